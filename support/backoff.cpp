#include "support/backoff.hpp"

#include <algorithm>

namespace budstikke::support {

std::chrono::milliseconds backoff::bound(std::uint32_t attempt) const noexcept {
  const std::int64_t top = std::max<std::int64_t>(0, cap.count());
  std::int64_t b = std::clamp<std::int64_t>(initial.count(), 0, top);
  // Doubling stops at the cap, so at most 63 rounds whatever the attempt.
  for (std::uint32_t n = 1; n < attempt && b > 0 && b < top; ++n) b = b > top / 2 ? top : b * 2;
  return std::chrono::milliseconds(b);
}

std::chrono::milliseconds backoff::delay(std::uint32_t attempt, std::uint64_t random) const noexcept {
  const auto b = std::max(bound(attempt), floor);
  const auto lo = std::clamp(spread == jitter::full ? std::chrono::milliseconds(0) : b / 2, floor, b);
  return uniform_delay(lo, b, random);
}

std::chrono::milliseconds uniform_delay(std::chrono::milliseconds lo, std::chrono::milliseconds hi,
                                        std::uint64_t random) noexcept {
  const auto width = static_cast<std::uint64_t>(hi.count() - lo.count()) + 1;
  return lo + std::chrono::milliseconds(static_cast<std::int64_t>(random % width));
}

}  // namespace budstikke::support
