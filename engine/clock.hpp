// The engine's one clock: steady time for waits, deadlines and durations, wall time for what is
// written down and for quiet hours. The shard reads time only through it; the sans-io parts
// (pipeline, scheduler, retry and quiet-hours arithmetic) take the time as an argument.
#pragma once

#include <chrono>

#include "engine/quiet_hours.hpp"

namespace budstikke::engine {

class clock {
 public:
  using steady_time = std::chrono::steady_clock::time_point;

  virtual ~clock() = default;
  virtual steady_time now() const { return std::chrono::steady_clock::now(); }
  virtual sys_ms wall() const {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  }
  std::int64_t wall_ms() const { return wall().time_since_epoch().count(); }

  // The real clock.
  static const clock& system() {
    static const clock c;
    return c;
  }
};

}  // namespace budstikke::engine
