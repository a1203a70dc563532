#include "engine/quiet_hours.hpp"

#include <algorithm>
#include <memory>

#include <unicode/ucal.h>

namespace budstikke::engine {
namespace {

std::u16string utf16(std::string_view ascii) { return std::u16string(ascii.begin(), ascii.end()); }

struct calendar_closer {
  void operator()(UCalendar* c) const noexcept { ucal_close(c); }
};
using calendar = std::unique_ptr<UCalendar, calendar_closer>;

calendar open_calendar(std::string_view zone) {
  UErrorCode status = U_ZERO_ERROR;
  auto id = utf16(zone);
  calendar cal(ucal_open(reinterpret_cast<const UChar*>(id.data()), static_cast<int32_t>(id.size()), "en_US_POSIX",
                         UCAL_GREGORIAN, &status));
  if (U_FAILURE(status)) return nullptr;
  return cal;
}

struct local_day {
  int year = 0, month = 0, day = 0;  // month 0-based, as ICU has it
  int seconds = 0;                   // since local midnight
};

local_day local_at(UCalendar* cal, sys_ms t) {
  UErrorCode status = U_ZERO_ERROR;
  ucal_setMillis(cal, static_cast<UDate>(t.time_since_epoch().count()), &status);
  local_day d;
  d.year = ucal_get(cal, UCAL_YEAR, &status);
  d.month = ucal_get(cal, UCAL_MONTH, &status);
  d.day = ucal_get(cal, UCAL_DATE, &status);
  d.seconds = ucal_get(cal, UCAL_HOUR_OF_DAY, &status) * 3600 + ucal_get(cal, UCAL_MINUTE, &status) * 60 +
              ucal_get(cal, UCAL_SECOND, &status);
  return d;
}

// The instant of local wall time `seconds` on the day `day_offset` days after d (lenient: the
// 32nd of a month is the 1st of the next).
sys_ms instant(UCalendar* cal, const local_day& d, int day_offset, int seconds) {
  UErrorCode status = U_ZERO_ERROR;
  ucal_clear(cal);
  ucal_setDateTime(cal, d.year, d.month, d.day + day_offset, seconds / 3600, seconds / 60 % 60, seconds % 60, &status);
  ucal_set(cal, UCAL_MILLISECOND, 0);
  return sys_ms(std::chrono::milliseconds(static_cast<std::int64_t>(ucal_getMillis(cal, &status))));
}

// One rule at `now`: quiet or not, and when that changes (never earlier than a second from now,
// whatever a DST transition does to wall times).
quiet_state rule_at(const quiet_rule& r, sys_ms now) {
  auto cal = open_calendar(r.timezone);
  if (!cal) return {};
  auto d = local_at(cal.get(), now);
  const int s = d.seconds;
  quiet_state q;
  if (r.from < r.to) q.quiet = s >= r.from && s < r.to;
  else q.quiet = s >= r.from || s < r.to;
  if (q.quiet) q.until = instant(cal.get(), d, (r.from < r.to || s < r.to) ? 0 : 1, r.to);
  else q.until = instant(cal.get(), d, s < r.from ? 0 : 1, r.from);
  q.until = std::max(q.until, now + std::chrono::seconds(1));
  return q;
}

}  // namespace

quiet_state quiet_hours_at(const std::vector<quiet_rule>& rules, queue::channel ch, std::string_view category,
                           sys_ms now) {
  quiet_state result;
  for (const auto& r : rules) {
    if (!r.applies(ch, category)) continue;
    auto q = rule_at(r, now);
    if (q.quiet) result.quiet = true;
    else result.until = std::min(result.until, q.until);
  }
  if (!result.quiet) return result;
  // Quiet until no applicable rule is quiet any more: follow the ends of overlapping windows
  // (bounded: a chain of more windows than rules would be a loop).
  sys_ms t = now;
  for (std::size_t step = 0; step <= rules.size(); ++step) {
    sys_ms end = t;
    for (const auto& r : rules) {
      if (!r.applies(ch, category)) continue;
      auto q = rule_at(r, t);
      if (q.quiet) end = std::max(end, q.until);
    }
    if (end == t) break;
    t = end;
  }
  result.until = t;
  return result;
}

}  // namespace budstikke::engine
