#include "queue/consumer.hpp"

#include <charconv>

#include <fmt/format.h>

namespace budstikke::queue {

std::optional<std::string> error_of(const redisReply* r) {
  if (r == nullptr) return std::string("no reply");
  if (r->type == REDIS_REPLY_ERROR) return std::string(as_string(r));
  return std::nullopt;
}

namespace {

// A count written by the engine; anything else (a portal's stray field) reads as 0.
std::uint32_t parse_count(std::string_view v) {
  std::uint32_t n = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  return ec == std::errc() && ptr == v.data() + v.size() ? n : 0;
}

std::int64_t parse_count64(std::string_view v) {
  std::int64_t n = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  return ec == std::errc() && ptr == v.data() + v.size() && n > 0 ? n : 0;
}

}  // namespace

std::size_t for_each_entry_in(const redisReply* entries, const std::function<void(const stream_entry&)>& on_entry) {
  if (!entries || entries->type != REDIS_REPLY_ARRAY) return 0;
  std::size_t n = 0;
  for (std::size_t e = 0; e < entries->elements; ++e) {
    const redisReply* entry = entries->element[e];
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) continue;
    stream_entry out;
    out.id = as_string(entry->element[0]);
    const redisReply* fields = entry->element[1];
    bool have_to = false;
    if (fields->type == REDIS_REPLY_ARRAY) {
      for (std::size_t f = 0; f + 1 < fields->elements; f += 2) {
        auto name = as_string(fields->element[f]);
        auto value = as_string(fields->element[f + 1]);
        if (name == field_to) {
          out.to = value;
          have_to = true;
        } else if (name == field_member) {
          out.member = value;
        } else if (name == field_data) {
          out.data = value;
        } else if (name == field_attempt) {
          out.attempt = parse_count(value);
        } else if (name == field_paused) {
          out.paused = parse_count(value);
        } else if (name == field_deferred) {
          out.deferred_ms = parse_count64(value);
        } else if (name == field_origin) {
          out.origin = value;
        } else if (name == field_malformed) {
          out.malformed = value;
        }
      }
    }
    out.well_formed = have_to && !out.to.empty();
    on_entry(out);
    ++n;
  }
  return n;
}

std::size_t for_each_entry(const redisReply* reply,
                           const std::function<void(std::string_view, const stream_entry&)>& on_entry) {
  // [[stream, [[id, [f, v, ...]] | [id, nil], ...]], ...]
  std::size_t n = 0;
  if (!reply || reply->type != REDIS_REPLY_ARRAY) return 0;
  for (std::size_t s = 0; s < reply->elements; ++s) {
    const redisReply* stream = reply->element[s];
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2) continue;
    auto key = as_string(stream->element[0]);
    n += for_each_entry_in(stream->element[1], [&](const stream_entry& e) { on_entry(key, e); });
  }
  return n;
}

void append_read(request& req, std::string_view consumer, std::size_t count, std::string_view stream) {
  req.command("XREADGROUP", "GROUP", consumer_group, consumer, "COUNT", count, "STREAMS", stream, ">");
}

void append_read_blocking(request& req, std::string_view consumer, std::size_t count,
                          std::chrono::milliseconds block, const std::vector<std::string_view>& streams) {
  req.begin(9 + 2 * streams.size())
      .arg("XREADGROUP").arg("GROUP").arg(consumer_group).arg(consumer)
      .arg("COUNT").arg(count).arg("BLOCK").arg(block.count()).arg("STREAMS");
  for (auto s : streams) req.arg(s);
  for (std::size_t i = 0; i < streams.size(); ++i) req.arg(">");
}

void append_pending_of(request& req, std::string_view stream, std::string_view consumer,
                       std::chrono::milliseconds min_idle, std::string_view cursor, std::size_t count) {
  req.command("XPENDING", stream, consumer_group, "IDLE", min_idle.count(), cursor, "+", count, consumer);
}

std::optional<std::vector<pending_entry>> parse_pending_of(const redisReply* r) {
  if (r == nullptr || r->type == REDIS_REPLY_ERROR) return std::nullopt;
  std::vector<pending_entry> out;
  if (r->type != REDIS_REPLY_ARRAY) return out;
  // [[id, consumer, idle ms, deliveries], ...]
  for (std::size_t i = 0; i < r->elements; ++i) {
    const redisReply* p = r->element[i];
    if (p->type != REDIS_REPLY_ARRAY || p->elements < 4) continue;
    out.push_back({std::string(as_string(p->element[0])), as_integer(p->element[3]).value_or(1)});
  }
  return out;
}

void append_claim(request& req, std::string_view stream, std::string_view inflight_key, std::string_view consumer,
                  std::chrono::milliseconds min_idle, const std::vector<pending_entry>& entries) {
  req.begin(5 + entries.size()).arg("XCLAIM").arg(stream).arg(consumer_group).arg(consumer).arg(min_idle.count());
  for (const auto& e : entries) req.arg(e.id);
  req.begin(2 + entries.size()).arg("HMGET").arg(inflight_key);
  for (const auto& e : entries) req.arg(e.id);
}

std::vector<bool> parse_marks(const redisReply* r, std::size_t entries) {
  std::vector<bool> marked(entries, false);
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return marked;
  for (std::size_t i = 0; i < r->elements && i < entries; ++i) marked[i] = !is_nil(r->element[i]);
  return marked;
}

void append_work_left(request& req, const keys& k, std::string_view campaign_id) {
  req.eval(work_left_script, 2, k.recipients(campaign_id), k.retry(campaign_id), consumer_group);
}

std::optional<work_left> parse_work_left(const redisReply* r) {
  work_left w;
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 3) return std::nullopt;
  w.pending = as_integer(r->element[0]).value_or(0);
  w.retries = as_integer(r->element[1]).value_or(0);
  w.unread = as_integer(r->element[2]).value_or(0) != 0;
  return w;
}

void append_consumers(request& req, std::string_view stream) {
  req.command("XINFO", "CONSUMERS", stream, consumer_group);
}

std::vector<consumer_info> parse_consumers(const redisReply* r) {
  std::vector<consumer_info> out;
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return out;
  for (std::size_t k = 0; k < r->elements; ++k) {
    const redisReply* info = r->element[k];
    if (info->type != REDIS_REPLY_ARRAY) continue;
    consumer_info c;
    for (std::size_t f = 0; f + 1 < info->elements; f += 2) {
      auto key = as_string(info->element[f]);
      if (key == "name") c.name = std::string(as_string(info->element[f + 1]));
      else if (key == "pending") c.pending = as_integer(info->element[f + 1]).value_or(0);
    }
    if (!c.name.empty()) out.push_back(std::move(c));
  }
  return out;
}

void append_consumer_alive(request& req, const keys& k, std::string_view consumer) {
  req.command("EXISTS", k.consumer_alive(consumer));
}

bool parse_alive(const redisReply* r) { return as_integer(r).value_or(1) != 0; }

void append_heartbeat(request& req, const keys& k, std::string_view consumer, std::int64_t now_ms,
                      std::chrono::milliseconds ttl) {
  req.command("SET", k.consumer_alive(consumer), now_ms, "PX", ttl.count());
}

void append_registry(request& req, const keys& k) { req.command("ZRANGE", k.registry(), 0, -1); }

std::optional<std::vector<std::string>> parse_ids(const redisReply* r) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return std::nullopt;
  std::vector<std::string> ids;
  ids.reserve(r->elements);
  for (std::size_t i = 0; i < r->elements; ++i) ids.emplace_back(as_string(r->element[i]));
  return ids;
}

void append_campaign(request& req, const keys& k, std::string_view id) { req.command("HGETALL", k.campaign(id)); }

support::result<campaign_definition> parse_campaign(const redisReply* r, std::string_view id) {
  std::vector<std::pair<std::string_view, std::string_view>> fields;
  if (r != nullptr && r->type == REDIS_REPLY_ARRAY)
    for (std::size_t i = 0; i + 1 < r->elements; i += 2)
      fields.emplace_back(as_string(r->element[i]), as_string(r->element[i + 1]));
  return campaign_definition::from_fields(id, fields);
}

void append_campaign_state(request& req, const keys& k, std::string_view id) {
  req.command("HGET", k.campaign(id), "state");
}

std::string parse_state(const redisReply* r) { return std::string(as_string(r)); }

std::optional<record_result> parse_record_result(const redisReply* r, std::size_t records) {
  // {recorded, done, counted}: see record_outcomes_script.
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 3) return std::nullopt;
  const redisReply* counted = r->element[2];
  if (counted->type != REDIS_REPLY_ARRAY || counted->elements != records) return std::nullopt;
  record_result out;
  out.finished = as_integer(r->element[1]).value_or(0) == 1;
  out.counted.reserve(records);
  for (std::size_t k = 0; k < records; ++k) {
    switch (as_integer(counted->element[k]).value_or(0)) {
      case 0: out.counted.push_back(record_count::not_counted); break;
      case 2: out.counted.push_back(record_count::retry_failed); break;
      default: out.counted.push_back(record_count::counted); break;
    }
  }
  return out;
}

std::optional<moved_retries> parse_moved_retries(const redisReply* r) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 3) return std::nullopt;
  return moved_retries{as_integer(r->element[0]).value_or(0), as_integer(r->element[1]).value_or(0),
                       as_integer(r->element[2]).value_or(0)};
}

}  // namespace budstikke::queue
