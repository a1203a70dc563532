// Quiet hours: per channel and category, a daily window of local wall-clock time in a time zone
// (e.g. no SMS 21:00-08:00 Europe/Oslo) in which nothing is sent; the messages wait. The
// arithmetic is a pure function of (now, rules), with ICU's time zone data (correct across DST).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "queue/schema.hpp"

namespace budstikke::engine {

using sys_ms = std::chrono::time_point<std::chrono::system_clock, std::chrono::milliseconds>;

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

}  // namespace budstikke::engine
