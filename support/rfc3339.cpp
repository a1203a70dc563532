#include "support/rfc3339.hpp"

#include <ctime>

#include <fmt/format.h>

namespace budstikke::support {

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const auto ms_since_epoch = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  // Floor division: an instant before 1970 still gets a millisecond part of 0..999.
  std::time_t secs = static_cast<std::time_t>(ms_since_epoch / 1000 - (ms_since_epoch % 1000 < 0 ? 1 : 0));
  const auto ms = ((ms_since_epoch % 1000) + 1000) % 1000;
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

}  // namespace budstikke::support
