// Retries survive a restart: they wait in Redis, not in the engine. A gateway that answers 500
// to everything; the engine is stopped (SIGTERM) while retries wait; they are in the retry set;
// a new engine, with the gateway healthy, sends every one exactly once.
#include <csignal>
#include <thread>

#include "tests/integration/sms.hpp"

using namespace budstikke::testing;
namespace queue = budstikke::queue;

TEST_CASE("e2e retry: waiting retries survive an engine restart and are sent by the next engine") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto failing = start_sms_sink(dir, {"--5xx-share", "1"});
  // A backoff long enough that retries are still waiting when the engine stops, and after.
  const std::string engine_extra = "  max_attempts: 20\n  retry_poll_ms: 20\n";
  auto config = write_sms_config(dir, redis, "http://127.0.0.1:" + std::to_string(failing.port) + "/cgi-bin/sendsms",
                                 "", engine_extra);
  {
    auto text = slurp(config);
    text.replace(text.find("retry_backoff_ms: 20"), 20, "retry_backoff_ms: 600");
    std::ofstream(config) << text;
  }
  constexpr int n = 100;
  enqueue_sms(dir, config, "restart", write_sms_members(dir, n));

  auto engine = budstikke::support::child_process::spawn(
      {budstikke_bin(), "run", "--config", config.string()}, (dir / "engine1.log").string());
  const auto counts = queue::keys().counts("restart");
  const auto retry_set = queue::keys().retry("restart");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (redis_integer(redis, {"HGET", counts, "retried"}) < n && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // At least as many retries moved back as there are members: the retry set is in use.
  REQUIRE(redis_integer(redis, {"HGET", counts, "retried"}) >= n);
  auto status = engine.stop(std::chrono::seconds(15));
  INFO(slurp(dir / "engine1.log"));
  REQUIRE(status.exited_normally());

  const auto waiting = redis_integer(redis, {"ZCARD", retry_set});
  CHECK(waiting > 0);
  CHECK(redis_integer(redis, {"HGET", counts, "retrying"}) == waiting);
  auto s = campaign_status(dir, config, "restart");
  CHECK(field(s, "sent") == 0);
  CHECK(field(s, "failed") == 0);
  CHECK(field(s, "pending") == n);
  CHECK(field(s, "retrying") == waiting);
  // A waiting retry carries the entry's fields, its attempts so far and the last reply.
  std::vector<std::string> payloads;
  with_redis(redis, [&](queue::connection& conn) -> boost::asio::awaitable<void> {
    queue::request req;
    req.command("ZRANGE", retry_set, 0, -1);
    std::vector<queue::reply_ptr> replies;
    auto ec = co_await conn.async_exec(req, replies);
    REQUIRE_FALSE(ec);
    for (std::size_t i = 0; i < replies[0]->elements; ++i) payloads.emplace_back(queue::as_string(replies[0]->element[i]));
  });
  REQUIRE(payloads.size() == static_cast<std::size_t>(waiting));
  for (auto& p : payloads) {
    auto v = boost::json::parse(p).as_object();
    CHECK(v.at("attempt").as_int64() >= 1);
    CHECK(v.at("reply").as_string().size() > 0);
    auto& fields = v.at("fields").as_array();
    std::map<std::string, std::string> f;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2)
      f[std::string(fields[i].as_string())] = std::string(fields[i + 1].as_string());
    CHECK(f.count("to") == 1);
    CHECK(f["id"].rfind("M", 0) == 0);
    CHECK(f["attempt"] == std::to_string(v.at("attempt").as_int64()));
    CHECK(f["origin"].size() > 0);
  }

  failing.process.stop();
  auto healthy = start_sms_sink(dir);
  config = write_sms_config(dir, redis, "http://127.0.0.1:" + std::to_string(healthy.port) + "/cgi-bin/sendsms", "",
                            engine_extra);
  run_until_idle(dir, config, std::chrono::seconds(60));
  s = campaign_status(dir, config, "restart");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n);
  CHECK(field(s, "retrying") == 0);
  CHECK(redis_integer(redis, {"ZCARD", retry_set}) == 0);
  healthy.process.stop();
  auto seen = sms_arrivals(dir);
  CHECK(seen.size() == static_cast<std::size_t>(n));
  for (auto& [number, count] : seen) CHECK(count == 1);
}
