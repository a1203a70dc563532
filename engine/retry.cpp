#include "engine/retry.hpp"

#include <algorithm>

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
  std::int64_t cap = 0;
  if (pause_only) {
    cap = retry_after.count() / 10;
  } else {
    // Doubling stops at 2^16: with any sane base the bound is hours already.
    const auto shift = std::min<std::uint32_t>(std::max(plan.attempts, 1u) - 1, 16);
    cap = base.count() << shift;
  }
  const auto span = static_cast<std::uint64_t>(cap) + 1;
  plan.delay = std::chrono::milliseconds(static_cast<std::int64_t>(random % span));
  if (pause_only) plan.delay += retry_after;
  return plan;
}

}  // namespace budstikke::engine
