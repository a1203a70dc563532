// Quiet hours end to end, on the real clock: windows of a few seconds (HH:MM:SS in UTC) that
// contain the moment the engine starts, or begin while a campaign is being sent.
#include <ctime>
#include <thread>

#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;
using clock_type = std::chrono::steady_clock;

namespace {

// "HH:MM:SS" in UTC, `offset` from now.
std::string utc_time_of_day(std::chrono::seconds offset) {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + offset);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf;
}

void enqueue(const temp_dir& dir, const fs::path& config, const std::string& id, int n) {
  auto enq = run_cli(dir, {"enqueue", "--config", config.string(), "--campaign", id, "--template",
                           source_dir() + "/deploy/templates/newsletter", "--recipients",
                           write_members(dir, n).string(), "--from", "nyheter@forbundet.example"});
  INFO(enq.output);
  REQUIRE(enq.code == 0);
}

std::int64_t delivered(const fs::path& maildir) {
  std::int64_t n = 0;
  for (auto& [to, count] : arrivals(maildir)) n += count;
  return n;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("e2e: a campaign enqueued in quiet hours waits for their end, then goes out whole") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  auto config = write_config(dir, redis, sink.port);
  constexpr int n = 300;
  enqueue(dir, config, "natt", n);
  // Quiet from a minute ago until 4 s from now (across midnight UTC when it is that late).
  std::ofstream(config, std::ios::app) << "quiet_hours:\n  - {channel: email, categories: [newsletter], from: \""
                                       << utc_time_of_day(-std::chrono::seconds(60)) << "\", to: \""
                                       << utc_time_of_day(std::chrono::seconds(4)) << "\", timezone: UTC}\n";
  auto start = clock_type::now();
  auto engine = budstikke::support::child_process::spawn(
      {budstikke_bin(), "run", "--config", config.string(), "--until-idle"}, (dir / "engine.log").string());
  // Nothing goes out while it is quiet (checked until 2.5 s, well inside the window).
  while (clock_type::now() - start < std::chrono::milliseconds(2500)) {
    REQUIRE(delivered(maildir) == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto status = engine.wait_for(std::chrono::seconds(30));
  REQUIRE(status);
  CHECK(status->code == 0);  // --until-idle waited for the end of the quiet hours
  double took = std::chrono::duration<double>(clock_type::now() - start).count();
  CHECK(took >= 3.0);
  auto s = campaign_status(dir, config, "natt");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n);
  auto seen = arrivals(maildir);
  CHECK(seen.size() == static_cast<std::size_t>(n));
  CHECK(delivered(maildir) == n);
  auto log = slurp(dir / "engine.log");
  INFO(log);
  CHECK(occurrences(log, "campaign waits for quiet hours") == 1);  // once, not per message or shard
  CHECK(occurrences(log, "quiet hours over") == 1);
  // No limits configured: the engine kept no token bucket in Redis.
  with_redis(redis, [&](budstikke::queue::connection& conn) -> boost::asio::awaitable<void> {
    budstikke::queue::request req;
    req.command("KEYS", "*{rate}*");
    std::vector<budstikke::queue::reply_ptr> replies;
    auto ec = co_await conn.async_exec(req, replies);
    REQUIRE_FALSE(ec);
    CHECK(replies[0]->type == REDIS_REPLY_ARRAY);
    CHECK(replies[0]->elements == 0);
  });
}

TEST_CASE("e2e: quiet hours that begin during a campaign stop it, and it resumes after them") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  auto config = write_config(dir, redis, sink.port);
  constexpr int n = 2500;
  enqueue(dir, config, "kveld", n);
  // 500/s: the campaign takes about 5 s without the quiet hours, which start 2 s in and last 3 s.
  std::ofstream(config, std::ios::app) << "limits:\n  global: 500\n"
                                       << "quiet_hours:\n  - {channel: email, from: \""
                                       << utc_time_of_day(std::chrono::seconds(2)) << "\", to: \""
                                       << utc_time_of_day(std::chrono::seconds(5)) << "\", timezone: UTC}\n";
  auto start = clock_type::now();
  auto engine = budstikke::support::child_process::spawn(
      {budstikke_bin(), "run", "--config", config.string(), "--until-idle"}, (dir / "engine.log").string());
  // Sample deliveries; whole seconds of the wall clock decide the window, so allow for the
  // sub-second offset on both sides.
  std::vector<std::pair<double, std::int64_t>> samples;
  std::optional<budstikke::support::exit_status> status;
  while (!(status = engine.wait_for(std::chrono::milliseconds(100))) && clock_type::now() - start < std::chrono::seconds(30))
    samples.emplace_back(std::chrono::duration<double>(clock_type::now() - start).count(), delivered(maildir));
  REQUIRE(status);
  CHECK(status->code == 0);
  auto at = [&](double t) {
    std::int64_t v = 0;
    for (auto& [when, count] : samples)
      if (when <= t) v = count;
    return v;
  };
  INFO("delivered at 1 s " << at(1.0) << ", 2.3 s " << at(2.3) << ", 3.9 s " << at(3.9) << ", end " << delivered(maildir));
  CHECK(at(1.0) > 0);           // sending before the quiet hours
  CHECK(at(1.0) < n);
  CHECK(at(3.9) == at(2.3));    // nothing between the start (1..2 s) and the end (4..5 s)
  CHECK(at(3.9) < n);
  auto s = campaign_status(dir, config, "kveld");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n);
  auto seen = arrivals(maildir);
  CHECK(seen.size() == static_cast<std::size_t>(n));  // every recipient, none twice
  CHECK(delivered(maildir) == n);
}
