// The events stream: one event per recipient outcome, with the campaign, member, channel, state,
// reason and the relay's reply, plus one `retrying` event per scheduled retry.
#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;
namespace queue = budstikke::queue;

TEST_CASE("e2e events: exactly one final event per recipient, with the right fields") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto sink = start_own_sink(dir, {"--transient-share", "0.5", "--reject-rcpt-containing", "@avd3.", "--seed", "9"});
  auto config = write_config(dir, redis, sink.port, "  max_attempts: 20\n  retry_poll_ms: 20\n");
  constexpr int n = 30;
  // One recipient whose address is unusable: skipped, with a reason and no reply.
  auto members = write_members(dir, n, {{5, R"({"to":"not-an-address","id":"M5"})"}});
  auto enq = run_cli(dir, {"enqueue", "--config", config.string(), "--campaign", "ev", "--template",
                           source_dir() + "/deploy/templates/newsletter", "--recipients", members.string(),
                           "--from", "nyheter@forbundet.example", "--skip-invalid"});
  INFO(enq.output);
  REQUIRE(enq.code == 0);
  // enqueue refuses the bad line itself; write it as a portal would.
  with_redis(redis, [&](queue::connection& conn) -> boost::asio::awaitable<void> {
    queue::request req;
    req.command("XADD", queue::keys().recipients("ev"), "*", "to", "not-an-address", "id", "M5");
    req.command("HINCRBY", queue::keys().campaign("ev"), "total", 1);
    std::vector<queue::reply_ptr> replies;
    auto ec = co_await conn.async_exec(req, replies);
    REQUIRE_FALSE(ec);
  });
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, std::chrono::seconds(60));
  INFO(run.output);
  REQUIRE(run.code == 0);
  auto s = campaign_status(dir, config, "ev");
  require_adds_up(s, n);

  std::map<std::string, int> finals;
  std::map<std::string, int> by_state;
  int retries = 0;
  for (auto& e : stream_records(redis, queue::keys().events())) {
    auto& f = e.fields;
    INFO(f["member"] << " " << f["state"] << " " << f["reason"]);
    CHECK(f["campaign"] == "ev");
    CHECK(f["channel"] == "email");
    CHECK(f["at"].size() == 24);
    CHECK(f["entry"].size() > 0);
    CHECK(f.count("to") == 0);  // member ids, never addresses
    const auto attempt = std::stoi(f["attempt"]);
    ++by_state[f["state"]];
    if (f["state"] == "retrying") {
      ++retries;
      CHECK(f["reply"].rfind("451 ", 0) == 0);
      CHECK(attempt >= 1);
      continue;
    }
    ++finals[f["member"]];
    if (f["state"] == "sent") {
      CHECK(f["reply"].rfind("250 ", 0) == 0);
      CHECK(f["reason"].empty());
      CHECK(attempt >= 1);
    } else if (f["state"] == "failed") {
      CHECK(f["reply"].rfind("550 ", 0) == 0);
      CHECK(f["reason"] == f["reply"]);
    } else {
      CHECK(f["state"] == "skipped");
      CHECK(f["member"] == "M5");
      CHECK(f["reply"].empty());
      CHECK(f["reason"].size() > 0);
      CHECK(attempt == 0);
    }
  }
  CHECK(finals.size() == static_cast<std::size_t>(n));
  for (auto& [member, count] : finals) CHECK(count == 1);
  CHECK(by_state["sent"] == field(s, "sent"));
  CHECK(by_state["failed"] == field(s, "failed"));
  CHECK(by_state["skipped"] == 1);
  CHECK(field(s, "failed") == 4);  // i % 7 == 3 for i < 30: 3, 10, 17, 24
  CHECK(retries > 0);
  CHECK(retries == redis_integer(redis, {"HGET", queue::keys().counts("ev"), "retried"}));
}
