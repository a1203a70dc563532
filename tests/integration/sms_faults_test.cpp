// The SMS sink's faults through the whole engine: 429 with Retry-After (no request inside the
// back-off window, everything sent in the end), 500s retried, dropped connections and slow
// answers ambiguous, and the counts match what the sink saw.
#include "tests/integration/sms.hpp"

using namespace budstikke::testing;

TEST_CASE("e2e sms: 10 % 429 Retry-After 1, every member sent, no request during a back-off window") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto sink = start_sms_sink(dir, {"--429-share", "0.1", "--retry-after", "1", "--seed", "11"});
  auto config = write_sms_config(dir, redis, "http://127.0.0.1:" + std::to_string(sink.port) + "/cgi-bin/sendsms",
                                 "    kind: kannel\n    concurrency: 64\n");
  constexpr int n = 1500;
  enqueue_sms(dir, config, "throttled", write_sms_members(dir, n));
  run_until_idle(dir, config);
  auto s = campaign_status(dir, config, "throttled");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n);
  sink.process.stop();
  CHECK(sms_sink_count(dir, "throttled") > 0);
  CHECK(sms_sink_count(dir, "in_backoff_same_connection") == 0);
  if (!slow_engine()) CHECK(sms_sink_count(dir, "in_backoff") == 0);
  auto seen = sms_arrivals(dir);
  CHECK(seen.size() == static_cast<std::size_t>(n));
  for (auto& [number, count] : seen) CHECK(count == 1);
}

TEST_CASE("e2e sms: 500s are retried, dropped connections are ambiguous and never resent") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto sink = start_sms_sink(dir, {"--5xx-share", "0.2", "--drop-share", "0.05", "--seed", "3"});
  auto config = write_sms_config(dir, redis, "http://127.0.0.1:" + std::to_string(sink.port) + "/cgi-bin/sendsms",
                                 "", "  max_attempts: 6\n");
  constexpr int n = 1500;
  enqueue_sms(dir, config, "faults", write_sms_members(dir, n));
  run_until_idle(dir, config);
  auto s = campaign_status(dir, config, "faults");
  require_adds_up(s, n);
  sink.process.stop();
  auto seen = sms_arrivals(dir);
  std::int64_t arrived = 0;
  for (auto& [number, count] : seen) {
    CHECK(count == 1);
    arrived += count;
  }
  CHECK(field(s, "sent") == arrived);
  CHECK(field(s, "ambiguous") == sms_sink_count(dir, "dropped"));
  CHECK(field(s, "ambiguous") > 0);
  CHECK(sms_sink_count(dir, "errors") > 0);
  CHECK(field(s, "sent") + field(s, "ambiguous") + field(s, "failed") == n);
}

TEST_CASE("e2e sms: an answer later than the request timeout is ambiguous") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto sink = start_sms_sink(dir, {"--slow-share", "0.1", "--slow-ms", "3000", "--seed", "9"});
  auto config = write_sms_config(dir, redis, "http://127.0.0.1:" + std::to_string(sink.port) + "/cgi-bin/sendsms",
                                 "    kind: kannel\n    request_timeout_ms: 500\n");
  constexpr int n = 300;
  enqueue_sms(dir, config, "slow", write_sms_members(dir, n));
  run_until_idle(dir, config);
  auto s = campaign_status(dir, config, "slow");
  require_adds_up(s, n);
  sink.process.stop();
  CHECK(field(s, "ambiguous") == sms_sink_count(dir, "slow"));
  CHECK(field(s, "ambiguous") > 0);
  CHECK(field(s, "sent") == static_cast<std::int64_t>(sms_arrivals(dir).size()));
}

// `send` destroys its messenger as soon as it is closed; the sanitized build turns any handler the
// messenger left queued into a failure here. Each answer is reported as it is, with exit 1.
TEST_CASE("e2e sms: budstikke send against a gateway that answers 429 with Retry-After, and one that drops the connection") {
  struct fault {
    std::vector<std::string> flags;
    std::string answer;
  };
  for (const auto& f : {fault{{"--429-share", "1", "--retry-after", "3"}, "gateway:   transient (429"},
                        fault{{"--drop-share", "1"}, "gateway:   ambiguous ("}}) {
    DYNAMIC_SECTION(f.flags[0]) {
      temp_dir dir;
      auto redis = start_redis(dir);
      auto sink = start_sms_sink(dir, f.flags);
      auto config = write_sms_config(dir, redis, "http://127.0.0.1:" + std::to_string(sink.port) + "/cgi-bin/sendsms");
      auto r = run_cli(dir, {"send", "--config", config.string(), "--channel", "sms", "--to", "412 34 567", "--member",
                             "M1", "--category", "transactional", "--text", "Møtet er flyttet."});
      INFO(r.output);
      CHECK(r.code == 1);
      CHECK(r.output.find(f.answer) != std::string::npos);
      if (f.flags[0] == "--429-share") CHECK(r.output.find("retry after: 3000 ms") != std::string::npos);
      CHECK(r.output.find("ERROR: AddressSanitizer") == std::string::npos);
      CHECK(sms_arrivals(dir).empty());
    }
  }
}
