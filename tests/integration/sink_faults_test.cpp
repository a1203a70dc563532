// The sink's fault flags: the final counts match exactly what the sink saw.
#include <regex>

#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;

namespace {

std::string enqueue_and_run(const temp_dir& dir, const fs::path& config, const std::string& id, int n) {
  auto members = write_members(dir, n);
  enqueue_newsletter(dir, config, id, members);
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, std::chrono::seconds(300));
  INFO(run.output);
  REQUIRE(run.code == 0);
  return run.output;
}

}  // namespace

TEST_CASE("e2e: transient 451s are retried, 550s fail, and the counts match the sink") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string(), "--transient-share", "0.3",
                                   "--reject-rcpt-containing", "@avd3.", "--seed", "7"});
  auto config = write_config(dir, redis, sink.port);
  constexpr int n = 2000;
  enqueue_and_run(dir, config, "faults", n);

  auto s = campaign_status(dir, config, "faults");
  require_adds_up(s, n);
  auto seen = arrivals(maildir);
  std::int64_t arrived = 0;
  for (auto& [addr, count] : seen) {
    CHECK(count == 1);
    arrived += count;
    CHECK(addr.find("@avd3.") == std::string::npos);
  }
  // Every `sent` is a message the sink accepted, and nothing else arrived.
  CHECK(field(s, "sent") == arrived);
  // Recipients at @avd3. are rejected for good: 2000 / 7 rounded up for i % 7 == 3.
  CHECK(field(s, "failed") >= 286);
  CHECK(field(s, "ambiguous") == 0);
}

TEST_CASE("e2e: a connection dropped after the final dot makes the message ambiguous, not sent twice") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string(), "--drop-after-dot-share", "0.05", "--seed", "3"});
  auto config = write_config(dir, redis, sink.port);
  constexpr int n = 2000;
  enqueue_and_run(dir, config, "drops", n);

  auto s = campaign_status(dir, config, "drops");
  require_adds_up(s, n);
  auto seen = arrivals(maildir);
  std::int64_t arrived = 0;
  for (auto& [addr, count] : seen) arrived += count;
  CHECK(field(s, "sent") == arrived);
  CHECK(field(s, "ambiguous") > 0);
  // The envelope pipelined with a dropped dot comes back transient; one that is unlucky on every
  // attempt ends failed ("gave up after 3 attempts"). Nothing else can fail here.
  CHECK(field(s, "failed") <= 5);
  CHECK(field(s, "sent") + field(s, "ambiguous") + field(s, "failed") == n);

  // The sink's own count of dropped connections equals the engine's ambiguous count.
  sink.process.stop();
  auto log = slurp(dir / "sink.log");
  std::smatch m;
  REQUIRE(std::regex_search(log, m, std::regex("dropped_after_dot[ =:]+([0-9]+)")));
  CHECK(std::stoll(m[1]) == field(s, "ambiguous"));
}
