// The engine and the CLI call their Lua scripts by SHA1: a run that needs every script sends
// none with its source, and one where the script cache is flushed again and again while it sends
// still sends every recipient exactly once (each NOSCRIPT call is sent again as EVAL).
#include <thread>

#include "tests/integration/e2e.hpp"
#include "tests/support/redis_info.hpp"

using namespace budstikke::testing;
namespace queue = budstikke::queue;

namespace {

struct script_stats {
  std::int64_t evalsha = 0, eval = 0, noscript = 0;
};
script_stats stats(const redis_server& redis) {
  auto commands = redis_text(redis, {"INFO", "commandstats"});
  return {info_number(commands, "cmdstat_evalsha", "calls"), info_number(commands, "cmdstat_eval", "calls"),
          info_number(redis_text(redis, {"INFO", "errorstats"}), "errorstat_NOSCRIPT", "count")};
}

}  // namespace

TEST_CASE("scripts: a run that uses every script calls each by SHA1, never with its source") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  // Some 4xx (retries, and dead letters once two attempts are used up) and some 5xx (dead letters).
  auto sink = start_own_sink(dir, {"--maildir", maildir.string(), "--transient-share", "0.3",
                                   "--reject-rcpt-containing", "@avd3.", "--seed", "7"});
  auto config = write_config(dir, redis, sink.port, "  max_attempts: 2\n  retry_poll_ms: 20\n");
  std::ofstream(config, std::ios::app) << "limits:\n  global: 100000\n";  // take_tokens for every batch
  constexpr int n = 140;
  enqueue_newsletter(dir, config, "sha", write_members(dir, n));
  for (const char* step : {"pause", "resume"}) {  // transition
    auto r = run_cli(dir, {step, "--config", config.string(), "--campaign", "sha"});
    INFO(r.output);
    REQUIRE(r.code == 0);
  }
  auto withdraw = run_cli(dir, {"consent", "withdraw", "--config", config.string(), "--member", "M1", "--channel",
                                "email", "--category", "newsletter"});  // withdraw_consent
  INFO(withdraw.output);
  REQUIRE(withdraw.code == 0);
  // record_outcomes, append_events, move_due_retries, take_tokens
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, std::chrono::seconds(120));
  INFO(run.output);
  REQUIRE(run.code == 0);
  auto s = campaign_status(dir, config, "sha");
  require_adds_up(s, n);
  CHECK(field(s, "failed") > 0);
  CHECK(field(s, "skipped") == 1);  // M1 withdrew
  auto requeue = run_cli(dir, {"dlq", "requeue", "--config", config.string(), "--campaign", "sha"});  // requeue_dead
  INFO(requeue.output);
  REQUIRE(requeue.code == 0);
  CHECK(requeue.output.find("requeued " + std::to_string(field(s, "failed")) + " dead letters") != std::string::npos);

  // Every script did its work ...
  CHECK(redis_integer(redis, {"HGET", queue::keys().counts("sha"), "retried"}) > 0);
  CHECK(redis_integer(redis, {"XLEN", queue::keys().events()}) >= n);
  CHECK(redis_text(redis, {"HGET", queue::keys().campaign("sha"), "state"}) == "active");
  // ... and none was ever sent with its source.
  auto calls = stats(redis);
  CHECK(calls.evalsha > 0);
  CHECK(calls.eval == 0);
  CHECK(calls.noscript == 0);
}

TEST_CASE("scripts: SCRIPT FLUSH again and again while the engine sends loses and doubles nothing") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string(), "--transient-share", "0.05", "--seed", "3"});
  auto config = write_config(dir, redis, sink.port, "  retry_poll_ms: 20\n  max_attempts: 20\n");
  std::ofstream(config, std::ios::app) << "limits:\n  global: 100000\n";
  constexpr int n = 2000;
  enqueue_newsletter(dir, config, "flush", write_members(dir, n));

  auto engine = budstikke::support::child_process::spawn(
      {budstikke_bin(), "run", "--config", config.string(), "--until-idle"}, (dir / "engine.log").string());
  std::optional<budstikke::support::exit_status> exited;
  int flushes = 0;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
       !(exited = engine.wait_for(std::chrono::milliseconds(10))) && std::chrono::steady_clock::now() < deadline;) {
    CHECK(redis_text(redis, {"SCRIPT", "FLUSH"}) == "OK");
    ++flushes;
  }
  if (!exited) engine.stop();
  INFO(slurp(dir / "engine.log"));
  REQUIRE(exited);
  REQUIRE(exited->code == 0);
  CHECK(flushes > 10);

  auto s = campaign_status(dir, config, "flush");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n);
  require_each_once(arrivals(maildir), n);
  // One event per outcome: n final ones and one per retry.
  CHECK(redis_integer(redis, {"XLEN", queue::keys().events()}) ==
        n + redis_integer(redis, {"HGET", queue::keys().counts("flush"), "retried"}));
  auto calls = stats(redis);
  CHECK(calls.noscript > 0);  // the flushes hit calls ...
  CHECK(calls.eval == calls.noscript);  // ... and each was sent again, once
}
