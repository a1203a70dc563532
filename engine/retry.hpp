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
// Each retry waits this many times longer than the one before, up to the policy's cap.
inline constexpr std::uint32_t retry_growth = 4;

// One category's retry policy (engine.* with categories.NAME.* overrides; config/config.hpp).
struct retry_policy {
  std::uint32_t max_attempts = 0;                      // counted sends; 0: only max_age ends retrying
  std::chrono::milliseconds first{std::chrono::minutes(1)};  // the wait after the first transient answer
  std::chrono::milliseconds cap{std::chrono::hours(1)};      // the longest wait
  std::chrono::milliseconds max_age{std::chrono::hours(24)};  // since the first transient answer
};

struct retry_plan {
  enum class verdict : std::uint8_t { retry, attempts_used_up, too_old };
  verdict what = verdict::retry;
  std::chrono::milliseconds delay{0};  // verdict::retry: wait this long (from now) before the next attempt
  std::uint32_t attempts = 0;          // sends that counted, this one included
  std::uint32_t paused = 0;            // answers that only asked for a pause, this one included
  bool give_up() const { return what != verdict::retry; }
};

// After a transient answer to the `attempts`-th counted send (`paused` pause-only answers before
// it), `deferred_for` after the message's first transient answer (0 for this first one).
//
// A counted retry waits first * growth^(attempts-1), capped, plus up to a quarter more at random
// (so that messages deferred together do not come back together, and never sooner than the
// schedule: a greylisting relay wants the wait). It gives up when the attempts are used up, or
// when the next attempt would come later than max_age after the first deferral.
//
// An answer with a Retry-After (`retry_after` > 0) is not an attempt (up to max_paused_retries
// of them, shared with unsent hand-backs): it waits the pause plus up to a tenth of it.
// `random` is a uniformly distributed 64-bit number.
retry_plan plan_retry(std::uint32_t attempts, std::uint32_t paused, std::chrono::milliseconds retry_after,
                      std::chrono::milliseconds deferred_for, const retry_policy& policy, std::uint64_t random);

}  // namespace budstikke::engine
