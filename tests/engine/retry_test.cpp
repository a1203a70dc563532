#include <catch2/catch.hpp>

#include "engine/retry.hpp"

using namespace budstikke::engine;
using std::chrono::milliseconds;
using std::chrono::minutes;

namespace {
constexpr std::uint64_t lowest = 0;
constexpr std::uint64_t highest = ~std::uint64_t{0};
const milliseconds none{0};
const retry_policy defaults{};  // 1 min, x4, capped at 60 min, 24 h, no attempt limit
}  // namespace

TEST_CASE("retry: the default schedule waits 1, 4, 16, then 60 minutes, plus up to a quarter, never less") {
  CHECK(defaults.max_attempts == 0);
  CHECK(defaults.first == minutes(1));
  CHECK(defaults.cap == minutes(60));
  CHECK(defaults.max_age == std::chrono::hours(24));
  const minutes expected[] = {minutes(1), minutes(4), minutes(16), minutes(60), minutes(60), minutes(60)};
  for (std::uint32_t k = 1; k <= 6; ++k) {
    const milliseconds wait = expected[k - 1];
    auto lo = plan_retry(k, 0, none, none, defaults, lowest);
    CHECK_FALSE(lo.give_up());
    CHECK(lo.delay == wait);
    CHECK(lo.attempts == k);
    auto hi = plan_retry(k, 0, none, none, defaults, wait.count() / 4);  // random % (span + 1) = span
    CHECK(hi.delay == wait + wait / 4);
    for (std::uint64_t r : {std::uint64_t{12345}, highest}) {
      auto p = plan_retry(k, 0, none, none, defaults, r);
      CHECK(p.delay >= wait);
      CHECK(p.delay <= wait + wait / 4);
    }
  }
}

TEST_CASE("retry: a large attempt count stays at the cap and cannot overflow") {
  retry_policy p{.first = milliseconds(1), .cap = milliseconds(86400000)};
  CHECK(plan_retry(900, 0, none, none, p, lowest).delay == milliseconds(86400000));
  CHECK(plan_retry(3, 0, none, none, p, lowest).delay == milliseconds(16));
  // A cap below the first wait: the first wait it is.
  retry_policy q{.first = milliseconds(600), .cap = milliseconds(200)};
  CHECK(plan_retry(5, 0, none, none, q, lowest).delay == milliseconds(600));
}

TEST_CASE("retry: gives up when the attempts are used up, if there is a limit") {
  retry_policy three{.max_attempts = 3, .first = milliseconds(100)};
  auto p = plan_retry(3, 0, none, none, three, 7);
  CHECK(p.give_up());
  CHECK(p.what == retry_plan::verdict::attempts_used_up);
  CHECK(p.attempts == 3);
  CHECK_FALSE(plan_retry(2, 0, none, none, three, 7).give_up());
  CHECK_FALSE(plan_retry(50, 0, none, none, defaults, 7).give_up());  // no limit: the age decides
}

TEST_CASE("retry: gives up once the next attempt would come later than max_age after the first deferral") {
  // Deferred for 23 h 30 min: a 60-minute wait would pass 24 h.
  auto late = plan_retry(20, 0, none, minutes(23 * 60 + 30), defaults, lowest);
  CHECK(late.give_up());
  CHECK(late.what == retry_plan::verdict::too_old);
  // Deferred for 22 h: one more (60 to 75 minutes) still fits.
  CHECK_FALSE(plan_retry(20, 0, none, minutes(22 * 60), defaults, highest).give_up());
  // A tariff result that gives up after 2 hours.
  retry_policy tariff{.max_age = std::chrono::hours(2)};
  CHECK_FALSE(plan_retry(3, 0, none, minutes(5), tariff, lowest).give_up());   // 16 min more: 21 min
  CHECK(plan_retry(4, 0, none, minutes(80), tariff, lowest).give_up());        // 60 min more: 140 min
}

TEST_CASE("retry: a Retry-After is a pause, not an attempt, and waits the pause plus up to a tenth") {
  const milliseconds after(2000);
  retry_policy three{.max_attempts = 3, .first = milliseconds(100)};
  auto p = plan_retry(3, 0, after, none, three, lowest);
  CHECK_FALSE(p.give_up());  // the third send only asked for a pause: two attempts counted
  CHECK(p.attempts == 2);
  CHECK(p.paused == 1);
  CHECK(p.delay == after);
  CHECK(plan_retry(3, 0, after, none, three, 200).delay == milliseconds(2200));
  CHECK(plan_retry(3, 0, after, none, three, 201).delay == after);
  // The age does not end pauses: they are the gateway's, not the message's.
  CHECK_FALSE(plan_retry(3, 0, after, std::chrono::hours(30), three, lowest).give_up());
}

TEST_CASE("retry: beyond the bound on pauses, a Retry-After counts as an attempt") {
  retry_policy three{.max_attempts = 3, .first = milliseconds(100)};
  auto p = plan_retry(3, max_paused_retries, milliseconds(1000), none, three, 0);
  CHECK(p.give_up());
  CHECK(p.paused == max_paused_retries);
  auto q = plan_retry(1, max_paused_retries, milliseconds(1000), none, three, 0);
  CHECK_FALSE(q.give_up());
  CHECK(q.attempts == 1);
  CHECK(q.delay == milliseconds(100));  // the backoff, not the pause
}
