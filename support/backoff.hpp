// Capped exponential backoff with jitter, sans-io: the delay before attempt `n` is drawn from a
// bound that doubles with each attempt up to a cap. Time and randomness are the caller's: the
// attempt number and a uniformly distributed 64-bit number are arguments, so tests pin both.
//
// Used by the SMTP pool (reconnects), the Redis connection (retried commands) and the engine's
// retry schedule; jitter keeps a fleet of shards from coming back in step.
#pragma once

#include <chrono>
#include <cstdint>

namespace budstikke::support {

enum class jitter : std::uint8_t {
  full,   // uniform in [0, bound]
  equal,  // uniform in [bound / 2, bound]
};

struct backoff {
  std::chrono::milliseconds initial{100};  // the bound of the first attempt
  std::chrono::milliseconds cap{10000};    // the bound never grows past this
  support::jitter spread = support::jitter::full;
  std::chrono::milliseconds floor{0};  // no delay below this (a bound below it is raised to it)

  // min(cap, initial * 2^(attempt - 1)), without overflow; attempt 0 counts as 1.
  std::chrono::milliseconds bound(std::uint32_t attempt) const noexcept;
  // Uniform over the jitter range of bound(attempt), raised to at least `floor`: `random` is a
  // uniformly distributed 64-bit number (its value modulo the range's width picks the delay).
  std::chrono::milliseconds delay(std::uint32_t attempt, std::uint64_t random) const noexcept;
};

// `lo + random % (hi - lo + 1)`: uniform in [lo, hi] for a uniform 64-bit `random` (lo <= hi).
std::chrono::milliseconds uniform_delay(std::chrono::milliseconds lo, std::chrono::milliseconds hi,
                                        std::uint64_t random) noexcept;

}  // namespace budstikke::support
