#include <catch2/catch.hpp>

#include "engine/retry.hpp"

using namespace budstikke::engine;
using std::chrono::milliseconds;

namespace {
constexpr std::uint64_t lowest = 0;
constexpr std::uint64_t highest = ~std::uint64_t{0};
}  // namespace

TEST_CASE("retry: full jitter over an exponentially growing bound") {
  const milliseconds base(100);
  // The bound after attempt k is base * 2^(k-1); random % (bound + 1) picks within [0, bound].
  CHECK(plan_retry(1, 0, milliseconds(0), 5, base, lowest).delay == milliseconds(0));
  CHECK(plan_retry(1, 0, milliseconds(0), 5, base, 100).delay == milliseconds(100));
  CHECK(plan_retry(1, 0, milliseconds(0), 5, base, 101).delay == milliseconds(0));
  CHECK(plan_retry(2, 0, milliseconds(0), 5, base, 200).delay == milliseconds(200));
  CHECK(plan_retry(3, 0, milliseconds(0), 5, base, 400).delay == milliseconds(400));
  CHECK(plan_retry(4, 0, milliseconds(0), 5, base, 799).delay == milliseconds(799));
  for (std::uint64_t r : {lowest, std::uint64_t{12345}, highest}) {
    auto p = plan_retry(3, 0, milliseconds(0), 5, base, r);
    CHECK_FALSE(p.give_up);
    CHECK(p.delay >= milliseconds(0));
    CHECK(p.delay <= milliseconds(400));
    CHECK(p.attempts == 3);
    CHECK(p.paused == 0);
  }
}

TEST_CASE("retry: gives up when the attempts are used up") {
  auto p = plan_retry(3, 0, milliseconds(0), 3, milliseconds(100), 7);
  CHECK(p.give_up);
  CHECK(p.attempts == 3);
  CHECK_FALSE(plan_retry(2, 0, milliseconds(0), 3, milliseconds(100), 7).give_up);
  CHECK(plan_retry(1, 0, milliseconds(0), 1, milliseconds(100), 7).give_up);
}

TEST_CASE("retry: the doubling stops at 2^16, so a large attempt count cannot overflow") {
  auto p = plan_retry(90, 0, milliseconds(0), 100, milliseconds(3600000), highest);
  CHECK_FALSE(p.give_up);
  CHECK(p.delay <= milliseconds(3600000LL << 16));
  CHECK(p.delay >= milliseconds(0));
  CHECK(plan_retry(90, 0, milliseconds(0), 100, milliseconds(1), 65536).delay == milliseconds(65536));
}

TEST_CASE("retry: a Retry-After is a pause, not an attempt, and waits the pause plus up to a tenth") {
  const milliseconds after(2000);
  auto p = plan_retry(3, 0, after, 3, milliseconds(100), lowest);
  CHECK_FALSE(p.give_up);  // the third send only asked for a pause: two attempts counted
  CHECK(p.attempts == 2);
  CHECK(p.paused == 1);
  CHECK(p.delay == after);
  CHECK(plan_retry(3, 0, after, 3, milliseconds(100), 200).delay == milliseconds(2200));
  CHECK(plan_retry(3, 0, after, 3, milliseconds(100), 201).delay == after);
  for (std::uint64_t r : {std::uint64_t{99}, highest}) {
    auto q = plan_retry(1, 5, after, 3, milliseconds(100), r);
    CHECK(q.delay >= after);
    CHECK(q.delay <= milliseconds(2200));
  }
}

TEST_CASE("retry: beyond the bound on pauses, a Retry-After counts as an attempt") {
  auto p = plan_retry(3, max_paused_retries, milliseconds(1000), 3, milliseconds(100), 0);
  CHECK(p.give_up);
  CHECK(p.paused == max_paused_retries);
  auto q = plan_retry(1, max_paused_retries, milliseconds(1000), 3, milliseconds(100), 50);
  CHECK_FALSE(q.give_up);
  CHECK(q.attempts == 1);
  CHECK(q.delay == milliseconds(50));  // the backoff, not the pause
}
