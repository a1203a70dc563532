// What each engine shard tells Redis about the paths it sends through (each SMTP relay, the SMS
// gateway): up, or suspended since when, why, and when it is probed next. `status` reads it; a
// portal may too (docs/redis-schema.md). One hash, a field per path and shard: shards of other
// processes learn a path's state on their own, so their reports may differ for a while.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "queue/resp.hpp"
#include "queue/schema.hpp"

namespace budstikke::queue {

struct path_report {
  std::string kind;              // "smtp" or "sms"
  std::string path;              // "127.0.0.1:2525", "http://gw.example:13013/cgi-bin/sendsms"
  std::string consumer;          // the shard that reports it
  bool usable = true;
  std::int64_t since_ms = 0;       // suspended since (ms since the epoch)
  std::int64_t next_probe_ms = 0;  // suspended: the next probe (ms since the epoch)
  std::string reason;              // suspended: why
  std::int64_t at_ms = 0;          // when this was reported
};

// HSET paths <consumer> <kind> <path> <JSON>
void append_path_report(request& req, const keys& k, const path_report& r);
// HDEL paths of these reports (a shard that stops cleanly takes its reports with it).
void append_forget_path_reports(request& req, const keys& k, const std::vector<path_report>& reports);
// HGETALL paths
void append_read_path_reports(request& req, const keys& k);
// Every report that parses; fields of another shape are skipped. Empty for an error reply.
std::vector<path_report> parse_path_reports(const redisReply* r);

// One path as every live shard sees it: suspended when any of them has it suspended (then since
// the earliest suspension, with the latest reason and the earliest next probe).
struct path_state {
  std::string kind, path;
  bool usable = true;
  std::int64_t since_ms = 0, next_probe_ms = 0;
  std::string reason;
  std::size_t reporters = 0;
};
// Reports of shards that are alive (`alive(consumer)`) merged per path, ordered by kind and path.
std::vector<path_state> merge_path_reports(const std::vector<path_report>& reports,
                                           const std::vector<bool>& alive);

}  // namespace budstikke::queue
