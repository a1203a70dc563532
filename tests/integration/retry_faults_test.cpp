// Transient failures through the project's fault-injecting sinks: every retry waits in the
// campaign's retry set in Redis (not in a slot), comes back as a new stream entry, and in the end
// every recipient is sent once, the set is empty and the counts add up.
#include <regex>

#include "tests/integration/sms.hpp"

using namespace budstikke::testing;

namespace {

long long smtp_sink_count(const temp_dir& dir, const std::string& name) {
  auto log = slurp(dir / "sink.log");
  std::smatch m;
  if (!std::regex_search(log, m, std::regex(" " + name + "=([0-9]+)"))) return -1;
  return std::stoll(m[1]);
}

std::map<std::string, int> events_by_state(const redis_server& redis, const std::string& campaign) {
  std::map<std::string, int> n;
  for (auto& e : stream_records(redis, budstikke::queue::keys().events()))
    if (e.fields["campaign"] == campaign) ++n[e.fields["state"]];
  return n;
}

}  // namespace

TEST_CASE("e2e retry: 451s wait in the retry set, every recipient is sent once, one retry per 4xx answer") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string(), "--transient-share", "0.4", "--seed", "21"});
  auto config = write_config(dir, redis, sink.port, "  max_attempts: 15\n  retry_poll_ms: 20\n");
  constexpr int n = 400;
  auto members = write_members(dir, n);
  enqueue_newsletter(dir, config, "soft", members);
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, std::chrono::seconds(60));
  INFO(run.output);
  REQUIRE(run.code == 0);

  auto s = campaign_status(dir, config, "soft");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n);
  CHECK(field(s, "retrying") == 0);
  CHECK(field(s, "enqueued") == n);  // entries moved back for a retry are not more recipients
  CHECK(redis_integer(redis, {"ZCARD", budstikke::queue::keys().retry("soft")}) == 0);
  CHECK(redis_integer(redis, {"XLEN", budstikke::queue::keys().dead("soft")}) == 0);
  auto seen = arrivals(maildir);
  CHECK(seen.size() == static_cast<std::size_t>(n));
  for (auto& [addr, count] : seen) CHECK(count == 1);

  sink.process.stop();
  const auto transient = smtp_sink_count(dir, "rcpt_transient") + smtp_sink_count(dir, "dot_transient");
  CHECK(transient > 0);
  auto events = events_by_state(redis, "soft");
  // Each 4xx answer became exactly one scheduled retry; each retry came back as one new entry.
  CHECK(events["retrying"] == transient);
  CHECK(redis_integer(redis, {"HGET", budstikke::queue::keys().counts("soft"), "retried"}) == transient);
  CHECK(redis_integer(redis, {"XLEN", budstikke::queue::keys().recipients("soft")}) == n + transient);
  CHECK(events["sent"] == n);
}

TEST_CASE("e2e retry sms: 500s and 429s with Retry-After go through the retry set, every member sent") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto sink = start_sms_sink(dir, {"--5xx-share", "0.3", "--429-share", "0.1", "--retry-after", "1", "--seed", "5"});
  auto config = write_sms_config(dir, redis, "http://127.0.0.1:" + std::to_string(sink.port) + "/cgi-bin/sendsms", "",
                                 "  max_attempts: 15\n  retry_poll_ms: 20\n");
  constexpr int n = 200;
  enqueue_sms(dir, config, "smsretry", write_sms_members(dir, n));
  run_until_idle(dir, config, std::chrono::seconds(60));
  auto s = campaign_status(dir, config, "smsretry");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n);
  CHECK(field(s, "retrying") == 0);
  CHECK(redis_integer(redis, {"ZCARD", budstikke::queue::keys().retry("smsretry")}) == 0);
  sink.process.stop();
  auto seen = sms_arrivals(dir);
  CHECK(seen.size() == static_cast<std::size_t>(n));
  for (auto& [number, count] : seen) CHECK(count == 1);
  CHECK(sms_sink_count(dir, "in_backoff_same_connection") == 0);
  if (!slow_engine()) CHECK(sms_sink_count(dir, "in_backoff") == 0);
  auto events = events_by_state(redis, "smsretry");
  // Requests held back during a gateway pause never reach the sink but are retried too.
  CHECK(events["retrying"] >= sms_sink_count(dir, "errors") + sms_sink_count(dir, "throttled"));
  CHECK(sms_sink_count(dir, "errors") > 0);
  CHECK(sms_sink_count(dir, "throttled") > 0);
  CHECK(events["sent"] == n);
}
