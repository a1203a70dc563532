// The admin port of a running engine: /healthz, /readyz (ready while it reaches Redis, not after
// Redis goes away), /metrics counting what was sent — and no address in /metrics or the logs.
#include <csignal>
#include <regex>
#include <thread>

#include "testpeers/http_client.hpp"
#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;
using budstikke::support::host_port;
using budstikke::testpeers::http_get;

namespace {


int get_status(const host_port& at, const char* target) {
  auto r = http_get(at, target, std::chrono::seconds(5));
  return r ? r->status : 0;
}

// The value of the sample line `series value`.
std::optional<double> sample(const std::string& text, const std::string& series) {
  std::size_t pos = 0;
  while ((pos = text.find(series + " ", pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') return std::stod(text.substr(pos + series.size() + 1));
    pos += series.size();
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("e2e: the admin port serves health, readiness and metrics of a running engine") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto sink = start_own_sink(dir);
  auto config = write_config(dir, redis, sink.port);
  constexpr int n = 700;
  auto members = write_members(dir, n);
  auto enq = run_cli(dir, {"enqueue", "--config", config.string(), "--campaign", "tariff-nord", "--tenant", "avd-nord",
                           "--category", "tariff", "--template", source_dir() + "/deploy/templates/newsletter",
                           "--recipients", members.string(), "--from", "nyheter@forbundet.example"});
  INFO(enq.output);
  REQUIRE(enq.code == 0);

  auto log = dir / "engine.log";
  auto engine = budstikke::support::child_process::spawn({budstikke_bin(), "run", "--config", config.string()},
                                                         log.string());
  host_port at{"127.0.0.1", admin_port_from_log(log)};
  CHECK(get_status(at, "/healthz") == 200);
  int ready = 0;
  for (int i = 0; i < 100 && ready != 200; ++i) {
    ready = get_status(at, "/readyz");
    if (ready != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(ready == 200);

  boost::json::object s;
  for (int i = 0; i < 600; ++i) {
    s = campaign_status(dir, config, "tariff-nord");
    if (s.at("state").as_string() == "done") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  require_adds_up(s, n);

  auto metrics = http_get(at, "/metrics", std::chrono::seconds(5));
  REQUIRE(metrics);
  CHECK(metrics->status == 200);
  const auto& text = metrics->body;
  INFO(text);
  CHECK(sample(text, R"(budstikke_messages_total{tenant="avd-nord",channel="email",adapter="smtp",outcome="sent"})") == n);
  CHECK(sample(text, R"(budstikke_campaign_messages_total{campaign="tariff-nord",tenant="avd-nord",channel="email",adapter="smtp",outcome="sent"})") == n);
  CHECK(sample(text, R"(budstikke_adapter_results_total{channel="email",adapter="smtp",result="accepted"})") == n);
  CHECK(sample(text, R"(budstikke_enqueue_to_accepted_seconds_count{channel="email"})") == n);
  CHECK(sample(text, R"(budstikke_relay_roundtrip_seconds_count{channel="email",adapter="smtp"})") == n);
  CHECK(sample(text, R"(budstikke_queue_lag_seconds_count{channel="email"})") == n);
  CHECK(sample(text, R"(budstikke_slots_held{shard="0"})") == 0);
  CHECK(sample(text, R"(budstikke_messages_on_wire{shard="1"})") == 0);
  CHECK(sample(text, "budstikke_retry_set_size") == 0);
  CHECK(text.find("# TYPE budstikke_rate_limiter_wait_seconds histogram") != std::string::npos);
  CHECK(get_status(at, "/") == 404);

  // Redis goes away: the engine is alive but not ready.
  redis.process.stop();
  for (int i = 0; i < 100 && ready == 200; ++i) {
    ready = get_status(at, "/readyz");
    if (ready == 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(ready == 503);
  CHECK(get_status(at, "/healthz") == 200);

  engine.signal(SIGTERM);
  auto exit = engine.wait_for(std::chrono::seconds(30));
  CHECK(exit);

  // Special-category data: no address in what ops collect.
  std::regex address(R"([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.-]+)");
  CHECK_FALSE(std::regex_search(text, address));
  auto engine_log = slurp(log);
  INFO(engine_log);
  CHECK_FALSE(std::regex_search(engine_log, address));
  CHECK(engine_log.find("medlem") == std::string::npos);
}
