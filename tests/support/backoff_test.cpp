#include <cstdint>
#include <limits>

#include <catch2/catch.hpp>

#include "support/backoff.hpp"

using namespace budstikke::support;
using std::chrono::milliseconds;

// The extremes of the random source.
constexpr std::uint64_t lowest = 0, highest = std::numeric_limits<std::uint64_t>::max();

TEST_CASE("backoff: the bound doubles from the initial value up to the cap") {
  const backoff b{.initial = milliseconds(100), .cap = milliseconds(1000)};
  CHECK(b.bound(0) == milliseconds(100));  // 0 counts as the first attempt
  CHECK(b.bound(1) == milliseconds(100));
  CHECK(b.bound(2) == milliseconds(200));
  CHECK(b.bound(3) == milliseconds(400));
  CHECK(b.bound(4) == milliseconds(800));
  CHECK(b.bound(5) == milliseconds(1000));
  CHECK(b.bound(6) == milliseconds(1000));
  CHECK(b.bound(~std::uint32_t{0}) == milliseconds(1000));
}

TEST_CASE("backoff: no overflow, whatever the attempt and the cap") {
  const backoff huge{.initial = milliseconds(3), .cap = milliseconds(INT64_MAX)};
  CHECK(huge.bound(62) == milliseconds(3LL << 61));
  CHECK(huge.bound(63) == milliseconds(INT64_MAX));  // 3 * 2^62 would overflow
  CHECK(huge.bound(~std::uint32_t{0}) == milliseconds(INT64_MAX));
  CHECK(huge.delay(~std::uint32_t{0}, highest) <= milliseconds(INT64_MAX));
  const backoff zero{.initial = milliseconds(0), .cap = milliseconds(1000)};
  CHECK(zero.bound(~std::uint32_t{0}) == milliseconds(0));  // nothing to double; ends at once
  CHECK(zero.delay(7, highest) == milliseconds(0));
  const backoff inverted{.initial = milliseconds(500), .cap = milliseconds(200)};
  CHECK(inverted.bound(1) == milliseconds(200));  // the cap wins
}

TEST_CASE("backoff: full jitter is uniform in [0, bound]") {
  const backoff b{.initial = milliseconds(100), .cap = milliseconds(100000), .spread = jitter::full};
  CHECK(b.delay(1, lowest) == milliseconds(0));
  CHECK(b.delay(1, 100) == milliseconds(100));
  CHECK(b.delay(1, 101) == milliseconds(0));  // random % (bound + 1)
  CHECK(b.delay(3, 400) == milliseconds(400));
  CHECK(b.delay(3, 399) == milliseconds(399));
  for (std::uint32_t attempt = 1; attempt < 20; ++attempt)
    for (std::uint64_t r : {lowest, std::uint64_t{12345}, std::uint64_t{0x9e3779b97f4a7c15}, highest}) {
      const auto d = b.delay(attempt, r);
      CHECK(d >= milliseconds(0));
      CHECK(d <= b.bound(attempt));
    }
}

TEST_CASE("backoff: equal jitter is uniform in [bound / 2, bound]") {
  const backoff b{.initial = milliseconds(50), .cap = milliseconds(5000), .spread = jitter::equal};
  CHECK(b.delay(1, lowest) == milliseconds(25));
  CHECK(b.delay(1, 25) == milliseconds(50));
  CHECK(b.delay(1, 26) == milliseconds(25));
  CHECK(b.delay(2, 50) == milliseconds(100));
  CHECK(b.delay(9, lowest) == milliseconds(2500));  // capped: 50 * 256 > 5000
  CHECK(b.delay(9, 2500) == milliseconds(5000));
  for (std::uint64_t r = 0; r < 2000; r += 7) {
    CHECK(b.delay(4, r) >= milliseconds(200));
    CHECK(b.delay(4, r) <= milliseconds(400));
  }
}

TEST_CASE("backoff: the floor keeps every delay at or above it") {
  const backoff b{.initial = milliseconds(100), .cap = milliseconds(10000), .spread = jitter::equal,
                  .floor = milliseconds(100)};
  CHECK(b.delay(1, lowest) == milliseconds(100));  // [max(100, 50), 100]: no jitter at the start
  CHECK(b.delay(1, highest) == milliseconds(100));
  CHECK(b.delay(2, lowest) == milliseconds(100));
  CHECK(b.delay(2, 100) == milliseconds(200));
  CHECK(b.delay(3, lowest) == milliseconds(200));
  // A fixed window [100, 1000]: one bound, full jitter, a floor.
  const backoff window{.initial = milliseconds(1000), .cap = milliseconds(1000), .spread = jitter::full,
                       .floor = milliseconds(100)};
  CHECK(window.delay(1, lowest) == milliseconds(100));
  CHECK(window.delay(1, 900) == milliseconds(1000));
  CHECK(window.delay(1, 901) == milliseconds(100));
  // A floor above the cap wins over it.
  const backoff above{.initial = milliseconds(10), .cap = milliseconds(20), .floor = milliseconds(50)};
  CHECK(above.delay(1, 12345) == milliseconds(50));
}

TEST_CASE("backoff: growth, over many draws, spreads over the whole range") {
  const backoff b{.initial = milliseconds(10), .cap = milliseconds(10000), .spread = jitter::full};
  std::uint64_t state = 0x2545F4914F6CDD1DULL;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (std::uint32_t attempt : {1u, 4u, 11u}) {
    milliseconds low = b.bound(attempt), high(0);
    for (int i = 0; i < 5000; ++i) {
      const auto d = b.delay(attempt, next());
      low = std::min(low, d);
      high = std::max(high, d);
    }
    INFO("attempt " << attempt);
    CHECK(low <= b.bound(attempt) / 20);
    CHECK(high >= b.bound(attempt) * 19 / 20);
    CHECK(high <= b.bound(attempt));
  }
}

TEST_CASE("backoff: uniform_delay picks in a closed range") {
  CHECK(uniform_delay(milliseconds(2000), milliseconds(2200), lowest) == milliseconds(2000));
  CHECK(uniform_delay(milliseconds(2000), milliseconds(2200), 200) == milliseconds(2200));
  CHECK(uniform_delay(milliseconds(2000), milliseconds(2200), 201) == milliseconds(2000));
  CHECK(uniform_delay(milliseconds(5), milliseconds(5), highest) == milliseconds(5));
}
