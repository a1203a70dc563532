// SIGTERM in the middle of a campaign: the engine finishes what is in flight, records it, exits 0;
// a restarted engine sends the rest. Every recipient gets exactly one message.
#include <csignal>
#include <thread>

#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;

TEST_CASE("e2e: SIGTERM mid-campaign, then a restart: every recipient exactly once") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  // Slow replies keep the campaign running long enough to be interrupted.
  auto sink = start_own_sink(dir, {"--maildir", maildir.string(), "--reply-delay-ms", "2"});
  auto config = write_config(dir, redis, sink.port);
  constexpr int n = 6000;
  auto members = write_members(dir, n);
  enqueue_newsletter(dir, config, "restart", members);

  auto log = dir / "engine-1.log";
  auto engine = budstikke::support::child_process::spawn(
      {budstikke_bin(), "run", "--config", config.string()}, log.string());
  // Wait until some, but not all, have been sent.
  std::int64_t sent_before = 0;
  for (int i = 0; i < 400 && sent_before < 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    sent_before = field(campaign_status(dir, config, "restart"), "sent");
  }
  REQUIRE(sent_before >= 200);
  engine.signal(SIGTERM);
  auto status = engine.wait_for(std::chrono::seconds(30));
  REQUIRE(status);
  INFO(slurp(log));
  CHECK(status->code == 0);

  auto mid = campaign_status(dir, config, "restart");
  auto recorded = field(mid, "sent");
  INFO("recorded before the restart: " << recorded);
  CHECK(recorded < n);
  CHECK(field(mid, "ambiguous") == 0);
  // What was in flight at SIGTERM was finished and recorded: the sink has exactly the recorded ones.
  std::int64_t arrived = 0;
  for (auto& [addr, count] : arrivals(maildir)) arrived += count;
  CHECK(arrived == recorded);

  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, std::chrono::seconds(300));
  INFO(run.output);
  REQUIRE(run.code == 0);
  auto s = campaign_status(dir, config, "restart");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n);
  require_each_once(arrivals(maildir), n);
}
