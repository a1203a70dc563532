#include <cstring>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "engine/metrics.hpp"

using namespace budstikke::engine;
using budstikke::queue::channel;
using budstikke::queue::final_state;

namespace {

// The value of the first sample line that starts with `series` (name and labels, exactly).
std::optional<double> sample(const std::string& text, const std::string& series) {
  std::size_t pos = 0;
  while ((pos = text.find(series + " ", pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') return std::stod(text.substr(pos + series.size() + 1));
    pos += series.size();
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("metrics: stream entry ids carry the enqueue time") {
  CHECK(metrics::entry_time_ms("1700000000123-0") == 1700000000123);
  CHECK(metrics::entry_time_ms("5-17") == 5);
  CHECK_FALSE(metrics::entry_time_ms("-1").has_value());
  CHECK_FALSE(metrics::entry_time_ms("abc-1").has_value());
  CHECK_FALSE(metrics::entry_time_ms("123").has_value());
}

TEST_CASE("metrics: a histogram counts into cumulative buckets and interpolates quantiles") {
  metrics::histogram h({1, 2, 4});
  for (double v : {0.5, 1.0, 1.5, 3.0, 10.0, -1.0}) h.observe(v);
  auto s = h.read();
  REQUIRE(s.cumulative.size() == 4);
  CHECK(s.cumulative[0] == 3);  // -1 (as 0), 0.5, 1.0: the bound is inclusive
  CHECK(s.cumulative[1] == 4);
  CHECK(s.cumulative[2] == 5);
  CHECK(s.cumulative[3] == 6);
  CHECK(s.count == 6);
  CHECK(s.sum == Approx(16.0));
  CHECK(s.quantile(0.5) == Approx(1.0));        // rank 3 is the end of the first bucket
  CHECK(s.quantile(0.6) == Approx(1.6));        // rank 3.6: 60 % into (1, 2]
  CHECK(s.quantile(1.0) == Approx(4.0));        // in +Inf: the last finite bound
  CHECK(metrics::histogram({1}).read().quantile(0.5) == 0);
}

TEST_CASE("metrics: fine report quantiles are within a few percent") {
  metrics::registry reg;
  for (int i = 1; i <= 1000; ++i) reg.observe_enqueue_to_accepted(channel::email, i / 100.0);  // 10 ms .. 10 s
  auto s = reg.enqueue_to_accepted();
  CHECK(s.count == 1000);
  CHECK(s.quantile(0.5) == Approx(5.0).epsilon(0.05));
  CHECK(s.quantile(0.99) == Approx(9.9).epsilon(0.05));
}

TEST_CASE("metrics: counters are exact when several threads record at once") {
  metrics::registry reg;
  auto series = reg.campaign("tariff-2026", "oslo", channel::email);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      auto mine = reg.campaign("tariff-2026", "oslo", channel::email);
      for (int i = 0; i < 10000; ++i) {
        mine->record(final_state::sent);
        reg.observe_relay_roundtrip(channel::email, 0.002);
        reg.adapter_result(channel::email, budstikke::adapters::outcome::accepted);
      }
    });
  for (auto& t : threads) t.join();
  CHECK(series->count(final_state::sent) == 40000);
  auto text = reg.render_prometheus();
  CHECK(sample(text, R"(budstikke_messages_total{tenant="oslo",channel="email",adapter="smtp",outcome="sent"})") == 40000);
  CHECK(sample(text, R"(budstikke_campaign_messages_total{campaign="tariff-2026",tenant="oslo",channel="email",adapter="smtp",outcome="sent"})") == 40000);
  CHECK(sample(text, R"(budstikke_adapter_results_total{channel="email",adapter="smtp",result="accepted"})") == 40000);
  CHECK(sample(text, R"(budstikke_relay_roundtrip_seconds_count{channel="email",adapter="smtp"})") == 40000);
  CHECK(sample(text, R"(budstikke_relay_roundtrip_seconds_bucket{channel="email",adapter="smtp",le="0.0025"})") == 40000);
  CHECK(sample(text, R"(budstikke_relay_roundtrip_seconds_bucket{channel="email",adapter="smtp",le="0.001"})") == 0);
}

TEST_CASE("metrics: the exposition is well-formed Prometheus text") {
  metrics::registry reg;
  reg.expect_shards(2);
  auto c = reg.campaign("c1", "avd \"Nord\"\\\n", channel::sms);
  c->record(final_state::skipped);
  reg.observe_rate_limiter_wait(metrics::limiter::domain, 0.2);
  auto text = reg.render_prometheus();

  // Every line is a comment or `name{labels} value`; every sample's family has HELP and TYPE.
  std::regex sample_line(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+]+|\+Inf|NaN)$)");
  std::regex comment_line(R"(^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
  std::set<std::string> typed;
  std::istringstream in(text);
  std::string line;
  std::size_t samples = 0;
  while (std::getline(in, line)) {
    INFO(line);
    std::smatch m;
    if (std::regex_match(line, m, comment_line)) {
      if (m[1] == "TYPE") typed.insert(m[2]);
      continue;
    }
    REQUIRE(std::regex_match(line, m, sample_line));
    std::string family = m[1];
    for (std::string_view suffix : {"_bucket", "_sum", "_count"})
      if (!typed.count(family) && family.ends_with(suffix)) family = family.substr(0, family.size() - suffix.size());
    CHECK(typed.count(family) == 1);
    ++samples;
  }
  CHECK(samples > 50);
  // The tenant's quote, backslash and newline are escaped.
  CHECK(text.find(R"(tenant="avd \"Nord\"\\\n")") != std::string::npos);
  CHECK(sample(text, R"(budstikke_rate_limiter_wait_seconds_bucket{limiter="domain",le="0.5"})") == 1);
  CHECK(sample(text, R"(budstikke_shard_ready{shard="1"})") == 0);
  CHECK(sample(text, "budstikke_retry_set_size") == 0);
}

TEST_CASE("metrics: readiness needs every expected shard") {
  metrics::registry reg;
  CHECK_FALSE(reg.ready());
  reg.expect_shards(2);
  reg.shard(0).ready = true;
  CHECK_FALSE(reg.ready());
  reg.shard(1).ready = true;
  CHECK(reg.ready());
}

TEST_CASE("metrics: the retry set size is what the Redis retry sets hold") {
  metrics::registry reg;
  reg.expect_shards(2);
  CHECK(sample(reg.render_prometheus(), "budstikke_retry_set_size") == 0);
  reg.set_retry_set_size(120);
  CHECK(sample(reg.render_prometheus(), "budstikke_retry_set_size") == 120);
}

TEST_CASE("metrics: a campaign's series is dropped a while after no shard serves it, tenants stay") {
  metrics::registry_options opt;
  opt.campaign_retention = std::chrono::minutes(10);
  metrics::registry reg(opt);
  auto t0 = std::chrono::steady_clock::now();
  auto h = reg.campaign("newsletter-mars", "tromso", channel::email, t0);
  h->record(final_state::sent);
  const std::string series = R"(budstikke_campaign_messages_total{campaign="newsletter-mars",tenant="tromso",channel="email",adapter="smtp",outcome="sent"})";
  const std::string tenant = R"(budstikke_messages_total{tenant="tromso",channel="email",adapter="smtp",outcome="sent"})";
  CHECK(sample(reg.render_prometheus(t0 + std::chrono::hours(1)), series) == 1);  // still held
  h.reset();
  CHECK(sample(reg.render_prometheus(t0 + std::chrono::hours(2)), series) == 1);  // unused from now on
  CHECK(sample(reg.render_prometheus(t0 + std::chrono::hours(2) + std::chrono::minutes(9)), series) == 1);
  auto later = reg.render_prometheus(t0 + std::chrono::hours(2) + std::chrono::minutes(11));
  CHECK_FALSE(sample(later, series).has_value());
  CHECK(sample(later, tenant) == 1);
}

TEST_CASE("metrics: campaign series and tenant names are bounded") {
  metrics::registry_options opt;
  opt.max_campaign_series = 3;
  opt.max_tenants = 2;
  metrics::registry reg(opt);
  std::vector<metrics::campaign_handle> held;
  for (int i = 0; i < 10; ++i) {
    held.push_back(reg.campaign("c" + std::to_string(i), "t" + std::to_string(i), channel::email));
    held.back()->record(final_state::failed);
  }
  auto text = reg.render_prometheus();
  std::size_t campaign_lines = 0, pos = 0;
  while ((pos = text.find("\nbudstikke_campaign_messages_total{", pos)) != std::string::npos) ++campaign_lines, ++pos;
  CHECK(campaign_lines == 3 * 4);  // three campaigns, four outcomes each
  CHECK(sample(text, R"(budstikke_messages_total{tenant="_other",channel="email",adapter="smtp",outcome="failed"})") == 8);
}
