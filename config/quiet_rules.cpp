// The vocabulary of quiet-hours rules as the configuration states them: which messages a rule
// covers, times of day, and time zone ids (checked against ICU's data; engine/quiet_hours.cpp
// does the calendar arithmetic).
#include <algorithm>
#include <string>

#include <unicode/ucal.h>

#include "config/config.hpp"
#include "config/load.hpp"

namespace budstikke {

bool quiet_rule::applies(queue::channel ch, std::string_view category) const {
  if (ch != channel) return false;
  return categories.empty() || std::find(categories.begin(), categories.end(), category) != categories.end();
}

std::optional<int> parse_time_of_day(std::string_view s) {
  auto two = [&](std::size_t at) -> int {
    if (at + 2 > s.size() || s[at] < '0' || s[at] > '9' || s[at + 1] < '0' || s[at + 1] > '9') return -1;
    return (s[at] - '0') * 10 + (s[at + 1] - '0');
  };
  if (s.size() != 5 && s.size() != 8) return std::nullopt;
  int h = two(0), m = two(3), sec = s.size() == 8 ? two(6) : 0;
  if (s[2] != ':' || (s.size() == 8 && s[5] != ':')) return std::nullopt;
  if (h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 59) return std::nullopt;
  return h * 3600 + m * 60 + sec;
}

bool known_time_zone(std::string_view id) {
  if (id.empty() || id.size() > 100) return false;
  std::u16string u(id.begin(), id.end());
  UChar canonical[128];
  UBool system = false;
  UErrorCode status = U_ZERO_ERROR;
  ucal_getCanonicalTimeZoneID(reinterpret_cast<const UChar*>(u.data()), static_cast<int32_t>(u.size()), canonical,
                              128, &system, &status);
  return U_SUCCESS(status) && system;
}

}  // namespace budstikke
