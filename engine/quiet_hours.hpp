// Quiet hours: per channel and category, a daily window of local wall-clock time in a time zone
// (e.g. no SMS 21:00-08:00 Europe/Oslo) in which nothing is sent; the messages wait. The
// arithmetic is a pure function of (now, rules), with ICU's time zone data (correct across DST).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "queue/schema.hpp"

namespace budstikke::engine {

using sys_ms = std::chrono::time_point<std::chrono::system_clock, std::chrono::milliseconds>;

struct quiet_rule {
  queue::channel channel = queue::channel::sms;
  std::vector<std::string> categories;  // empty: every category
  int from = 0;                         // seconds after local midnight, inclusive
  int to = 0;                           // exclusive; to < from: the window crosses midnight
  std::string timezone = "UTC";         // an IANA zone id, e.g. Europe/Oslo

  bool applies(queue::channel ch, std::string_view category) const;
};

struct quiet_state {
  bool quiet = false;
  // When `quiet` changes: the end of the quiet period, or the start of the next one;
  // sys_ms::max() when no rule applies.
  sys_ms until = sys_ms::max();
};

// The state at `now` for messages of (channel, category). Overlapping windows join: `until` is
// the end of the joint period. A window end or start that falls into a DST gap is taken as the
// first valid time after the gap; one in a repeated hour as its first occurrence.
quiet_state quiet_hours_at(const std::vector<quiet_rule>& rules, queue::channel ch, std::string_view category,
                           sys_ms now);

// "HH:MM" or "HH:MM:SS" (00:00:00..23:59:59) -> seconds after midnight.
std::optional<int> parse_time_of_day(std::string_view s);
// True for a time zone id ICU knows (an IANA id such as "Europe/Oslo", or "UTC").
bool known_time_zone(std::string_view id);

}  // namespace budstikke::engine
