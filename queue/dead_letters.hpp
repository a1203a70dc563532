// Dead letters (a campaign's recipients recorded `failed`, keys::dead): reading them page by page
// and requeueing them, as request builders and typed answers (`budstikke dlq`).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "queue/resp.hpp"
#include "queue/schema.hpp"

namespace budstikke::queue {

struct dead_letter {
  std::string id;  // in the dead-letter stream
  std::vector<std::pair<std::string, std::string>> fields;

  std::string_view get(std::string_view name) const {
    for (const auto& [f, v] : fields)
      if (f == name) return v;
    return {};
  }
};

// XRANGE dead (cursor + COUNT count: the next page after `cursor` ("-" first, "(ID" after ID).
void append_dead_letters(request& req, const keys& k, std::string_view campaign_id, std::string_view cursor,
                         std::size_t count);
// XRANGE dead id id: one dead letter.
void append_dead_letter(request& req, const keys& k, std::string_view campaign_id, std::string_view id);
// The letters of either; nullopt for an error or a reply that is not a list (error_of says which).
std::optional<std::vector<dead_letter>> parse_dead_letters(const redisReply* r);

// Whether the campaign exists, its state and priority (HMGET campaign id state priority).
struct campaign_summary {
  bool exists = false;
  std::string state;
  std::int64_t priority = 5;
};
void append_campaign_summary(request& req, const keys& k, std::string_view campaign_id);
campaign_summary parse_campaign_summary(const redisReply* r);

// The reply of append_requeue_dead (campaign_store.hpp): how many were requeued now and the
// campaign's state after; nullopt for an error (a campaign that is gone or cancelled) or a reply
// of the wrong shape.
struct requeued {
  std::int64_t count = 0;
  std::string state;
};
std::optional<requeued> parse_requeued(const redisReply* r);

}  // namespace budstikke::queue
