// pause, resume and cancel while the engine runs: pause + resume sends every recipient exactly
// once; cancel leaves the untouched recipients counted as cancelled.
#include <csignal>
#include <thread>

#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;

namespace {

std::int64_t sent_now(const temp_dir& dir, const fs::path& config, const char* id) {
  return field(campaign_status(dir, config, id), "sent");
}

void enqueue(const temp_dir& dir, const fs::path& config, const char* id, int n) {
  auto members = write_members(dir, n);
  enqueue_newsletter(dir, config, id, members);
}

}  // namespace

TEST_CASE("e2e: pause stops sending within a second, resume finishes with every recipient exactly once") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string(), "--reply-delay-ms", "2"});
  auto config = write_config(dir, redis, sink.port);
  constexpr int n = 5000;
  enqueue(dir, config, "pr", n);
  auto engine = budstikke::support::child_process::spawn({budstikke_bin(), "run", "--config", config.string()},
                                                         (dir / "engine.log").string());
  for (int i = 0; i < 500 && sent_now(dir, config, "pr") < 500; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));

  auto pause = run_cli(dir, {"pause", "--config", config.string(), "--campaign", "pr"});
  INFO(pause.output);
  REQUIRE(pause.code == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  auto after_a_second = sent_now(dir, config, "pr");
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  auto later = sent_now(dir, config, "pr");
  CHECK(later == after_a_second);  // nothing more goes out while paused
  CHECK(later < n);
  CHECK(campaign_status(dir, config, "pr").at("state").as_string() == "paused");

  // Pausing twice is refused with a reason.
  auto again = run_cli(dir, {"pause", "--config", config.string(), "--campaign", "pr"});
  CHECK(again.code == 2);
  CHECK(again.output.find("is paused; it cannot be paused") != std::string::npos);

  REQUIRE(run_cli(dir, {"resume", "--config", config.string(), "--campaign", "pr"}).code == 0);
  for (int i = 0; i < 3000 && sent_now(dir, config, "pr") < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  engine.signal(SIGTERM);
  REQUIRE(engine.wait_for(std::chrono::seconds(30)));

  auto s = campaign_status(dir, config, "pr");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n);
  require_each_once(arrivals(maildir), n);
}

TEST_CASE("e2e: cancel stops a campaign and counts the untouched recipients as cancelled") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string(), "--reply-delay-ms", "2"});
  auto config = write_config(dir, redis, sink.port);
  constexpr int n = 5000;
  enqueue(dir, config, "cx", n);
  auto engine = budstikke::support::child_process::spawn(
      {budstikke_bin(), "run", "--config", config.string(), "--until-idle"}, (dir / "engine.log").string());
  for (int i = 0; i < 500 && sent_now(dir, config, "cx") < 500; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(run_cli(dir, {"cancel", "--config", config.string(), "--campaign", "cx"}).code == 0);
  // A cancelled campaign is no work: --until-idle ends.
  auto status = engine.wait_for(std::chrono::seconds(30));
  REQUIRE(status);
  CHECK(status->code == 0);

  auto s = campaign_status(dir, config, "cx");
  CHECK(s.at("state").as_string() == "cancelled");
  auto sent = field(s, "sent");
  CHECK(sent < n);
  CHECK(field(s, "pending") == 0);
  CHECK(sent + field(s, "failed") + field(s, "skipped") + field(s, "ambiguous") + field(s, "cancelled") == n);
  std::int64_t arrived = 0;
  for (auto& [addr, count] : arrivals(maildir)) arrived += count;
  CHECK(arrived == sent);
  auto resume = run_cli(dir, {"resume", "--config", config.string(), "--campaign", "cx"});
  CHECK(resume.code == 2);
}
