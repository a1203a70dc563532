// The health of one path (an SMTP relay, the SMS gateway) as every shard of the process sees it.
//
//   up ──failed──▶ suspended ──take_probe (when due)──▶ probing ──succeeded──▶ up
//                     ▲                                    │
//                     └────────────── failed ──────────────┘ (the next probe after a longer wait)
//
// While suspended nothing is sent through the path: what is pushed comes back unsent. Probes are
// spaced by a capped exponential backoff with equal jitter, and there is one probe at a time for
// the whole process (a probe taken and never answered is given to another taker after
// probe_timeout). Every change bumps generation(), so each shard's adapter learns of a change
// another shard made by comparing it. Time and randomness are arguments (sans-io); the state is
// behind a mutex (shards run on their own threads).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "adapters/delivery.hpp"
#include "support/backoff.hpp"

namespace budstikke::adapters {

enum class path_status : std::uint8_t { up, suspended, probing };
const char* to_string(path_status s) noexcept;

class path_health {
 public:
  using clock = std::chrono::steady_clock;

  struct view {
    path_status status = path_status::up;
    std::string reason;              // why it was suspended (empty when up)
    clock::time_point since{};       // when it was suspended
    clock::time_point next_probe{};  // while suspended: when the next probe is due
    std::uint64_t generation = 0;
    std::uint64_t suspensions = 0;   // times it went from up to suspended
    bool usable() const noexcept { return status == path_status::up; }
  };

  // A connection or request got through: the path is up. True when that is a change.
  bool succeeded();
  // A failure of the path (not of a message): suspended, or still suspended with a later probe.
  // `probes` spaces the probes: its bound doubles per failed probe up to its cap. True when that
  // is a change of state or of the reason (worth one line in the log).
  bool failed(std::string_view reason, clock::time_point now, std::uint64_t random, const support::backoff& probes);
  // The probe, when it is due and nobody has it (or its taker has been silent for
  // `probe_timeout`): suspended -> probing. The taker reports succeeded() or failed().
  bool take_probe(clock::time_point now, std::chrono::milliseconds probe_timeout);

  view snapshot() const;
  std::uint64_t generation() const;
  bool usable() const;

 private:
  mutable std::mutex mutex_;
  view state_;
  std::uint32_t failures_ = 0;  // consecutive, since it was last up
  clock::time_point probe_taken_{};
};

// From `now` until `t` in whole milliseconds, rounded up; 0 once `t` has passed.
std::chrono::milliseconds time_until(path_health::clock::time_point t, path_health::clock::time_point now);

// What a listener is told of `view` (a path of `kind` named `name`) at `now`. The event's strings
// are views of `kind`, `name` and `view.reason`.
path_event event_of(std::string_view kind, std::string_view name, const path_health::view& view,
                    path_health::clock::time_point now);

// The paths of one kind by name ("127.0.0.1:2525"), each created on first use. Held by the
// configuration, so every shard's adapter for the same relay finds the same path_health.
class path_registry {
 public:
  std::shared_ptr<path_health> at(std::string_view name);

 private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<path_health>, std::less<>> paths_;
};

}  // namespace budstikke::adapters
