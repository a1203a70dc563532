#include "queue/dead_letters.hpp"

namespace budstikke::queue {

void append_dead_letters(request& req, const keys& k, std::string_view campaign_id, std::string_view cursor,
                         std::size_t count) {
  req.command("XRANGE", k.dead(campaign_id), cursor, "+", "COUNT", count);
}

void append_dead_letter(request& req, const keys& k, std::string_view campaign_id, std::string_view id) {
  req.command("XRANGE", k.dead(campaign_id), id, id);
}

std::optional<std::vector<dead_letter>> parse_dead_letters(const redisReply* r) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return std::nullopt;
  std::vector<dead_letter> out;
  out.reserve(r->elements);
  // [[id, [f, v, ...]], ...]
  for (std::size_t i = 0; i < r->elements; ++i) {
    const redisReply* e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
    dead_letter d;
    d.id = std::string(as_string(e->element[0]));
    const redisReply* f = e->element[1];
    if (f->type == REDIS_REPLY_ARRAY)
      for (std::size_t k = 0; k + 1 < f->elements; k += 2)
        d.fields.emplace_back(as_string(f->element[k]), as_string(f->element[k + 1]));
    out.push_back(std::move(d));
  }
  return out;
}

void append_campaign_summary(request& req, const keys& k, std::string_view campaign_id) {
  req.command("HMGET", k.campaign(campaign_id), "id", "state", "priority");
}

campaign_summary parse_campaign_summary(const redisReply* r) {
  campaign_summary s;
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 3 || is_nil(r->element[0])) return s;
  s.exists = true;
  s.state = std::string(as_string(r->element[1]));
  s.priority = as_integer(r->element[2]).value_or(5);
  return s;
}

std::optional<requeued> parse_requeued(const redisReply* r) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 2) return std::nullopt;
  return requeued{as_integer(r->element[0]).value_or(0), std::string(as_string(r->element[1]))};
}

}  // namespace budstikke::queue
