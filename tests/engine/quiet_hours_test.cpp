// Quiet hours as a pure function of (now, rules): many instants against an independent oracle of
// Oslo's offsets, the DST nights of 2026, windows inside a day and across midnight, overlaps.
#include <catch2/catch.hpp>

#include "config/load.hpp"
#include "engine/quiet_hours.hpp"

using namespace budstikke;
using namespace budstikke::engine;
using budstikke::queue::channel;
using namespace std::chrono;

namespace {

sys_ms utc(int y, unsigned m, unsigned d, int h, int mi = 0, int s = 0) {
  return sys_ms(sys_days(year_month_day(year(y), month(m), day(d))) + hours(h) + minutes(mi) + seconds(s));
}

quiet_rule rule(channel ch, const char* from, const char* to, const char* zone, std::vector<std::string> cats = {}) {
  quiet_rule r;
  r.channel = ch;
  r.from = *parse_time_of_day(from);
  r.to = *parse_time_of_day(to);
  r.timezone = zone;
  r.categories = std::move(cats);
  return r;
}

// Oslo in 2026, from the EU rule (last Sundays of March and October at 01:00 UTC), not from ICU.
hours oslo_offset(sys_ms t) {
  return t >= utc(2026, 3, 29, 1) && t < utc(2026, 10, 25, 1) ? hours(2) : hours(1);
}
// The instant of local Oslo wall time (not in a transition hour).
sys_ms oslo_instant(sys_days local_day, seconds local_time) {
  sys_ms guess = sys_ms(local_day) + local_time - hours(1);
  return oslo_offset(guess) == hours(1) ? guess : guess - hours(1);
}

}  // namespace

TEST_CASE("quiet hours: 21:00-08:00 Europe/Oslo at every 7th minute across both DST changes of 2026") {
  std::vector<quiet_rule> rules{rule(channel::sms, "21:00", "08:00", "Europe/Oslo")};
  int checked = 0, quiet = 0;
  for (auto [from, to] : {std::pair{utc(2026, 3, 25, 0), utc(2026, 4, 2, 0)}, {utc(2026, 10, 21, 0), utc(2026, 10, 29, 0)},
                          {utc(2026, 6, 20, 0), utc(2026, 6, 23, 0)}}) {
    for (sys_ms t = from; t < to; t += minutes(7) + seconds(13)) {
      sys_ms local = t + oslo_offset(t);
      auto day = floor<days>(local);
      auto tod = duration_cast<seconds>(local - day);
      bool expect_quiet = tod >= hours(21) || tod < hours(8);
      sys_ms expect_until;
      if (expect_quiet) expect_until = oslo_instant(tod < hours(8) ? day : day + days(1), hours(8));
      else expect_until = oslo_instant(day, hours(21));
      auto q = quiet_hours_at(rules, channel::sms, "newsletter", t);
      INFO("at " << t.time_since_epoch().count() << " ms");
      REQUIRE(q.quiet == expect_quiet);
      REQUIRE(q.until == expect_until);
      ++checked;
      quiet += q.quiet;
    }
  }
  CHECK(checked > 3500);
  CHECK(quiet > checked / 3);
}

TEST_CASE("quiet hours: the DST nights are an hour shorter and longer") {
  std::vector<quiet_rule> rules{rule(channel::sms, "21:00", "08:00", "Europe/Oslo")};
  // 22:00 CET on 28 March: the clocks go forward in the night, 08:00 CEST is 06:00 UTC.
  auto spring = quiet_hours_at(rules, channel::sms, "winback", utc(2026, 3, 28, 21));
  CHECK(spring.quiet);
  CHECK(spring.until == utc(2026, 3, 29, 6));
  // 23:00 CEST on 24 October: back to CET, 08:00 is 07:00 UTC.
  auto autumn = quiet_hours_at(rules, channel::sms, "winback", utc(2026, 10, 24, 21));
  CHECK(autumn.quiet);
  CHECK(autumn.until == utc(2026, 10, 25, 7));
  // 07:59:59 CET is quiet, 08:00:00 is not; the next quiet period starts at 21:00 CET.
  CHECK(quiet_hours_at(rules, channel::sms, "x", utc(2026, 1, 15, 6, 59, 59)).quiet);
  auto morning = quiet_hours_at(rules, channel::sms, "x", utc(2026, 1, 15, 7));
  CHECK_FALSE(morning.quiet);
  CHECK(morning.until == utc(2026, 1, 15, 20));
}

TEST_CASE("quiet hours: a window that ends in the hour the clocks skip ends after it") {
  std::vector<quiet_rule> rules{rule(channel::sms, "01:00", "02:30", "Europe/Oslo")};
  auto q = quiet_hours_at(rules, channel::sms, "x", utc(2026, 3, 29, 0, 30));  // 01:30 CET
  CHECK(q.quiet);
  CHECK(q.until == utc(2026, 3, 29, 1, 30));  // 02:30 does not exist; 03:30 CEST is the same instant
}

TEST_CASE("quiet hours: seconds, other zones, categories and channels") {
  std::vector<quiet_rule> rules{rule(channel::email, "12:00:00", "12:00:30", "UTC", {"newsletter"}),
                                rule(channel::sms, "22:00", "07:00", "America/New_York", {"winback", "newsletter"})};
  CHECK(quiet_hours_at(rules, channel::email, "newsletter", utc(2026, 5, 1, 12, 0, 29)).quiet);
  CHECK(quiet_hours_at(rules, channel::email, "newsletter", utc(2026, 5, 1, 12, 0, 0)).until == utc(2026, 5, 1, 12, 0, 30));
  CHECK_FALSE(quiet_hours_at(rules, channel::email, "newsletter", utc(2026, 5, 1, 12, 0, 30)).quiet);
  CHECK_FALSE(quiet_hours_at(rules, channel::email, "newsletter", utc(2026, 5, 1, 11, 59, 59)).quiet);
  CHECK(quiet_hours_at(rules, channel::email, "newsletter", utc(2026, 5, 1, 11, 59, 59)).until == utc(2026, 5, 1, 12));
  // Other categories and channels: never quiet, nothing to wait for.
  auto tariff = quiet_hours_at(rules, channel::email, "tariff", utc(2026, 5, 1, 12, 0, 10));
  CHECK_FALSE(tariff.quiet);
  CHECK(tariff.until == sys_ms::max());
  // New York in EDT (UTC-4) on 1 May: 22:00-07:00 local is 02:00-11:00 UTC.
  CHECK(quiet_hours_at(rules, channel::sms, "winback", utc(2026, 5, 1, 3)).quiet);
  CHECK(quiet_hours_at(rules, channel::sms, "winback", utc(2026, 5, 1, 3)).until == utc(2026, 5, 1, 11));
  CHECK_FALSE(quiet_hours_at(rules, channel::sms, "tariff", utc(2026, 5, 1, 3)).quiet);
  // In EST (UTC-5) in January it is 03:00-12:00 UTC.
  CHECK_FALSE(quiet_hours_at(rules, channel::sms, "winback", utc(2026, 1, 10, 2, 30)).quiet);
  CHECK(quiet_hours_at(rules, channel::sms, "winback", utc(2026, 1, 10, 2, 30)).until == utc(2026, 1, 10, 3));
}

TEST_CASE("quiet hours: overlapping and adjoining windows join") {
  std::vector<quiet_rule> rules{rule(channel::sms, "21:00", "23:00", "UTC"), rule(channel::sms, "22:30", "08:00", "UTC"),
                                rule(channel::sms, "12:00", "13:00", "UTC"), rule(channel::sms, "13:00", "14:00", "UTC")};
  auto night = quiet_hours_at(rules, channel::sms, "x", utc(2026, 2, 2, 21, 30));
  CHECK(night.quiet);
  CHECK(night.until == utc(2026, 2, 3, 8));
  auto noon = quiet_hours_at(rules, channel::sms, "x", utc(2026, 2, 2, 12, 10));
  CHECK(noon.quiet);
  CHECK(noon.until == utc(2026, 2, 2, 14));
  // Not quiet: the nearest start of any window.
  auto morning = quiet_hours_at(rules, channel::sms, "x", utc(2026, 2, 2, 9));
  CHECK_FALSE(morning.quiet);
  CHECK(morning.until == utc(2026, 2, 2, 12));
}

TEST_CASE("quiet hours: times of day and time zones") {
  CHECK(parse_time_of_day("00:00") == 0);
  CHECK(parse_time_of_day("21:00") == 21 * 3600);
  CHECK(parse_time_of_day("23:59:59") == 86399);
  CHECK_FALSE(parse_time_of_day("24:00"));
  CHECK_FALSE(parse_time_of_day("9:00"));
  CHECK_FALSE(parse_time_of_day("09:60"));
  CHECK_FALSE(parse_time_of_day("09:00:60"));
  CHECK_FALSE(parse_time_of_day("09-00"));
  CHECK_FALSE(parse_time_of_day("09:00:0"));
  CHECK(known_time_zone("Europe/Oslo"));
  CHECK(known_time_zone("UTC"));
  CHECK_FALSE(known_time_zone("Europe/Atlantis"));
  CHECK_FALSE(known_time_zone(""));
}
