#include "engine/retry.hpp"

#include <algorithm>

#include "support/backoff.hpp"

namespace budstikke::engine {

retry_plan plan_retry(std::uint32_t attempts, std::uint32_t paused, std::chrono::milliseconds retry_after,
                      std::chrono::milliseconds deferred_for, const retry_policy& policy, std::uint64_t random) {
  retry_plan plan;
  plan.attempts = attempts;
  plan.paused = paused;
  const bool pause_only = retry_after.count() > 0 && paused < max_paused_retries;
  if (pause_only) {
    ++plan.paused;
    if (plan.attempts > 0) --plan.attempts;
  }
  if (policy.max_attempts > 0 && plan.attempts >= policy.max_attempts) {
    plan.what = retry_plan::verdict::attempts_used_up;
    return plan;
  }
  if (pause_only) {
    plan.delay = support::uniform_delay(retry_after, retry_after + retry_after / 10, random);
    return plan;
  }
  // first * growth^(attempts - 1), stopping at the cap (and before it could overflow).
  std::chrono::milliseconds wait = std::max(policy.first, std::chrono::milliseconds(1));
  for (std::uint32_t k = 1; k < plan.attempts && wait < policy.cap; ++k) wait *= retry_growth;
  wait = std::min(wait, std::max(policy.cap, policy.first));
  plan.delay = support::uniform_delay(wait, wait + wait / 4, random);
  if (deferred_for + plan.delay > policy.max_age) plan.what = retry_plan::verdict::too_old;
  return plan;
}

}  // namespace budstikke::engine
