#include "engine/retry.hpp"

#include "support/backoff.hpp"

namespace budstikke::engine {

retry_plan plan_retry(std::uint32_t attempts, std::uint32_t paused, std::chrono::milliseconds retry_after,
                      std::uint32_t max_attempts, std::chrono::milliseconds base, std::uint64_t random) {
  retry_plan plan;
  plan.attempts = attempts;
  plan.paused = paused;
  const bool pause_only = retry_after.count() > 0 && paused < max_paused_retries;
  if (pause_only) {
    ++plan.paused;
    if (plan.attempts > 0) --plan.attempts;
  }
  if (plan.attempts >= max_attempts) {
    plan.give_up = true;
    return plan;
  }
  if (pause_only) {
    plan.delay = support::uniform_delay(retry_after, retry_after + retry_after / 10, random);
  } else {
    // Doubling stops at 2^16: with any sane base the bound is hours already.
    const support::backoff schedule{.initial = base, .cap = base * (1 << 16), .spread = support::jitter::full};
    plan.delay = schedule.delay(plan.attempts, random);
  }
  return plan;
}

}  // namespace budstikke::engine
