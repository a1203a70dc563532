// RFC 3339 time stamps in UTC with milliseconds ("2026-12-01T05:13:36.123Z"), as records,
// events, logs and the campaign hash carry them.
#pragma once

#include <chrono>
#include <string>

namespace budstikke::support {

std::string rfc3339(std::chrono::system_clock::time_point t);
inline std::string now_rfc3339() { return rfc3339(std::chrono::system_clock::now()); }

}  // namespace budstikke::support
