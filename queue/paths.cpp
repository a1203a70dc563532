#include "queue/paths.hpp"

#include <algorithm>
#include <map>
#include <tuple>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace budstikke::queue {
namespace {

// The hash field: one per shard and path. Tabs cannot occur in a consumer name or a path.
std::string field_of(const path_report& r) { return r.consumer + "\t" + r.kind + "\t" + r.path; }

std::int64_t int_or_zero(const boost::json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  return v && v->is_int64() ? v->as_int64() : 0;
}

}  // namespace

void append_path_report(request& req, const keys& k, const path_report& r) {
  boost::json::object o;
  o["kind"] = r.kind;
  o["path"] = r.path;
  o["consumer"] = r.consumer;
  o["state"] = r.usable ? "up" : "suspended";
  o["since_ms"] = r.since_ms;
  o["next_probe_ms"] = r.next_probe_ms;
  o["reason"] = r.reason;
  o["at_ms"] = r.at_ms;
  req.command("HSET", k.paths(), field_of(r), boost::json::serialize(o));
}

void append_forget_path_reports(request& req, const keys& k, const std::vector<path_report>& reports) {
  if (reports.empty()) return;
  req.begin(2 + reports.size());
  req.arg("HDEL");
  req.arg(k.paths());
  for (const auto& r : reports) req.arg(field_of(r));
}

void append_read_path_reports(request& req, const keys& k) { req.command("HGETALL", k.paths()); }

std::vector<path_report> parse_path_reports(const redisReply* r) {
  std::vector<path_report> out;
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return out;
  for (std::size_t i = 0; i + 1 < r->elements; i += 2) {
    boost::system::error_code ec;
    auto v = boost::json::parse(as_string(r->element[i + 1]), ec);
    if (ec || !v.is_object()) continue;
    const auto& o = v.as_object();
    const auto* kind = o.if_contains("kind");
    const auto* path = o.if_contains("path");
    const auto* consumer = o.if_contains("consumer");
    const auto* state = o.if_contains("state");
    if (!kind || !kind->is_string() || !path || !path->is_string() || !consumer || !consumer->is_string() ||
        !state || !state->is_string())
      continue;
    path_report p;
    p.kind = kind->as_string();
    p.path = path->as_string();
    p.consumer = consumer->as_string();
    p.usable = state->as_string() == "up";
    p.since_ms = int_or_zero(o, "since_ms");
    p.next_probe_ms = int_or_zero(o, "next_probe_ms");
    if (const auto* reason = o.if_contains("reason"); reason && reason->is_string()) p.reason = reason->as_string();
    p.at_ms = int_or_zero(o, "at_ms");
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<path_state> merge_path_reports(const std::vector<path_report>& reports, const std::vector<bool>& alive) {
  std::map<std::pair<std::string, std::string>, std::pair<path_state, std::int64_t>> merged;  // + latest report
  for (std::size_t i = 0; i < reports.size(); ++i) {
    if (i >= alive.size() || !alive[i]) continue;
    const auto& r = reports[i];
    auto [it, fresh] = merged.try_emplace({r.kind, r.path});
    auto& [s, latest] = it->second;
    if (fresh) {
      s.kind = r.kind;
      s.path = r.path;
    }
    ++s.reporters;
    if (r.usable) continue;
    if (s.usable) {
      s.usable = false;
      s.since_ms = r.since_ms;
      s.next_probe_ms = r.next_probe_ms;
    } else {
      s.since_ms = std::min(s.since_ms, r.since_ms);
      s.next_probe_ms = std::min(s.next_probe_ms, r.next_probe_ms);
    }
    if (r.at_ms >= latest) {
      latest = r.at_ms;
      s.reason = r.reason;
    }
  }
  std::vector<path_state> out;
  for (auto& [key, v] : merged) out.push_back(std::move(v.first));
  return out;
}

}  // namespace budstikke::queue
