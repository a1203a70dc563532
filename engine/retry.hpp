// The retry policy for transient answers, sans-io: how long a message waits before its next
// attempt, or that it gives up. The random source is a parameter so tests can pin it.
#pragma once

#include <chrono>
#include <cstdint>

namespace budstikke::engine {

// Answers that only asked for a pause (Retry-After), and messages handed back unsent because the
// path failed, are not attempts, up to this many per message.
inline constexpr std::uint32_t max_paused_retries = 100;
// An unsent message waits at least this long (the path's next probe, when later).
inline constexpr std::chrono::milliseconds min_unsent_wait{1000};

struct retry_plan {
  bool give_up = false;                // attempts exhausted: record `failed`
  std::chrono::milliseconds delay{0};  // otherwise: wait this long (from now) before the next attempt
  std::uint32_t attempts = 0;          // sends that counted, this one included
  std::uint32_t paused = 0;            // answers that only asked for a pause, this one included
};

// After a transient answer to the `attempts`-th counted send (`paused` pause-only answers before
// it). Exponential backoff with full jitter: a delay uniform in [0, base * 2^(attempts-1)]. An
// answer with a Retry-After is not an attempt (up to max_paused_retries of them): it waits the
// pause plus up to a tenth of it at random, so the retries do not all arrive the moment it ends.
// `random` is a uniformly distributed 64-bit number.
retry_plan plan_retry(std::uint32_t attempts, std::uint32_t paused, std::chrono::milliseconds retry_after,
                      std::uint32_t max_attempts, std::chrono::milliseconds base, std::uint64_t random);

}  // namespace budstikke::engine
