// Outages of the path, which delay a campaign and never fail it: a relay or the SMS gateway that
// is down, goes away mid-campaign, or is misconfigured. Real processes throughout: Redis, the
// engine, the project's own SMTP and SMS sinks, stopped and started on the same port while the
// engine runs. Nothing is failed, each recipient arrives once (twice only where the engine counted
// it ambiguous or resent), and `status --json` names the suspended path and why.
// BUDSTIKKE_LONG_TESTS=1 (deploy/dev.sh test --long) runs the relay scenarios at 100,000
// recipients with a 30 s (start) and 20 s (mid-campaign) outage, and the SMS one at 20,000
// numbers with two 20 s outages.
#include <csignal>
#include <thread>

#include <fmt/format.h>

#include "testpeers/http_client.hpp"
#include "testpeers/throwaway_cert.hpp"
#include "tests/integration/sms.hpp"

using namespace budstikke::testing;
using namespace std::chrono_literals;
using std::chrono::steady_clock;

namespace {

bool long_run() { return std::getenv("BUDSTIKKE_LONG_TESTS") != nullptr; }

std::size_t lines_in(const fs::path& file) {
  std::ifstream in(file);
  std::size_t n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

// Waits (bounded) until `file` has at least `n` lines.
void wait_for_lines(const fs::path& file, std::size_t n, std::chrono::seconds limit) {
  auto until = steady_clock::now() + limit;
  while (lines_in(file) < n) {
    REQUIRE(steady_clock::now() < until);
    std::this_thread::sleep_for(20ms);
  }
}

std::size_t occurrences(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The engine as a background process: `run --until-idle` plus `extra`.
budstikke::support::child_process start_engine(const temp_dir& dir, const fs::path& config, const std::string& log,
                                    const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"run", "--config", config.string(), "--until-idle"};
  args.insert(args.end(), extra.begin(), extra.end());
  return spawn_cli(dir, args, log);
}

int wait_engine(budstikke::support::child_process& engine, const temp_dir& dir, const std::string& log,
                std::chrono::seconds limit) {
  auto status = engine.wait_for(limit);
  INFO(slurp(dir / log));
  REQUIRE(status);
  return status->signal ? 128 + status->signal : status->code;
}

// The campaign's paths from `status --json` while the engine runs: the first one not up.
boost::json::object suspended_path(const temp_dir& dir, const fs::path& config, const std::string& id,
                                   std::chrono::seconds limit) {
  auto until = steady_clock::now() + limit;
  for (;;) {
    auto s = campaign_status(dir, config, id);
    for (const auto& p : s.at("paths").as_array())
      if (p.as_object().at("state").as_string() == "suspended") return p.as_object();
    if (steady_clock::now() >= until) FAIL("no suspended path in status --json: " << boost::json::serialize(s));
    std::this_thread::sleep_for(100ms);
  }
}

// No recipient failed or went to the dead letters, and every one is accounted for.
void require_nothing_failed(const boost::json::object& s, std::int64_t n) {
  require_adds_up(s, n);
  CHECK(field(s, "failed") == 0);
  CHECK(field(s, "dead_letters") == 0);
}

std::int64_t count_arrivals(const std::map<std::string, int>& seen, std::int64_t* duplicates = nullptr) {
  std::int64_t arrived = 0, twice = 0;
  for (auto& [who, count] : seen) {
    arrived += count;
    twice += count - 1;
  }
  if (duplicates) *duplicates = twice;
  return arrived;
}

}  // namespace

TEST_CASE("outage: the relay is down when the campaign starts; nothing fails, each recipient once") {
  const int n = long_run() ? 100000 : 3000;
  const auto outage = long_run() ? 30s : 5s;
  temp_dir dir;
  auto redis = start_redis(dir);
  const auto port = budstikke::support::free_loopback_port();
  auto maildir = dir / "mail";
  auto config = write_config(dir, redis, port);
  enqueue_newsletter(dir, config, "down-at-start", write_members(dir, n));

  auto started = steady_clock::now();
  auto engine = start_engine(dir, config, "engine.log");
  auto path = suspended_path(dir, config, "down-at-start", 20s);
  CHECK(path.at("kind").as_string() == "smtp");
  CHECK(path.at("path").as_string() == "127.0.0.1:" + std::to_string(port));
  CHECK(path.at("reason").as_string().size() > 0);
  // /metrics says so too: the path is down, suspended once.
  const budstikke::support::host_port admin{"127.0.0.1", admin_port_from_log(dir / "engine.log")};
  auto metrics = budstikke::testpeers::http_get(admin, "/metrics", 5s);
  REQUIRE(metrics);
  const auto series = "{kind=\"smtp\",path=\"127.0.0.1:" + std::to_string(port) + "\"}";
  CHECK(metrics->body.find("budstikke_path_up" + series + " 0\n") != std::string::npos);
  CHECK(metrics->body.find("budstikke_path_suspensions_total" + series + " 1\n") != std::string::npos);
  std::this_thread::sleep_for(outage - (steady_clock::now() - started));
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()}, port);
  CHECK(wait_engine(engine, dir, "engine.log", 600s) == 0);
  auto took = steady_clock::now() - started;

  auto s = campaign_status(dir, config, "down-at-start");
  CHECK(s.at("paths").as_array().empty());  // a stopped engine takes its reports with it
  require_nothing_failed(s, n);
  CHECK(field(s, "sent") == n);
  require_each_once(arrivals(maildir), n);
  // Normal time plus the outage plus the probe backoff's cap (smtp.reconnect_backoff_max_ms,
  // 10 s), with room for a slow machine: the campaign resumed by itself.
  const auto bound = outage + 10s + (long_run() ? 60s : 20s);
  CHECK(took < bound);
  WARN("relay down for " << outage.count() << " s at the start: " << n << " recipients done in "
                         << std::chrono::duration<double>(took).count() << " s");
  // The engine said so once per change, not once per message.
  const auto suspended_lines = occurrences(slurp(dir / "engine.log"), "smtp relay suspended");
  CHECK(suspended_lines >= 1);
  CHECK(suspended_lines <= 4);
}

TEST_CASE("outage: the relay goes away after a quarter and is back on the same port; nothing fails") {
  const int n = long_run() ? 100000 : 4000;
  const auto outage = long_run() ? 20s : 5s;
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  // Slow enough replies that the campaign is still running when the relay goes away.
  auto sink = start_own_sink(dir, {"--maildir", maildir.string(), "--reply-delay-ms", long_run() ? "0" : "2"});
  const auto port = sink.port;
  auto config = write_config(dir, redis, port);
  enqueue_newsletter(dir, config, "mid", write_members(dir, n));

  auto engine = start_engine(dir, config, "engine.log");
  wait_for_lines(maildir / "recipients.log", n / 4, 120s);
  sink.process.signal(SIGKILL);  // gone, mid-conversation
  sink.process.wait();
  auto path = suspended_path(dir, config, "mid", 20s);
  CHECK(path.at("path").as_string() == "127.0.0.1:" + std::to_string(port));
  std::this_thread::sleep_for(outage);
  auto back = start_own_sink(dir, {"--maildir", maildir.string()}, port, "sink-2.log");
  CHECK(wait_engine(engine, dir, "engine.log", 600s) == 0);

  auto s = campaign_status(dir, config, "mid");
  require_nothing_failed(s, n);
  std::int64_t duplicates = 0;
  auto seen = arrivals(maildir);
  count_arrivals(seen, &duplicates);
  CHECK(seen.size() + static_cast<std::size_t>(field(s, "ambiguous")) >= static_cast<std::size_t>(n));
  // Only a message whose final dot went out unanswered may have arrived twice: the engine
  // counted it ambiguous (not resent, for newsletters) — never one the engine handed back.
  CHECK(duplicates <= field(s, "ambiguous") + field(s, "resent"));
  CHECK(field(s, "sent") + field(s, "ambiguous") == n);
  CHECK(occurrences(slurp(dir / "engine.log"), "smtp relay suspended") >= 1);  // the outage was mid-campaign
  WARN("relay killed after " << n / 4 << " of " << n << ", back after " << outage.count() << " s: sent "
                             << field(s, "sent") << ", ambiguous " << field(s, "ambiguous") << ", arrived twice "
                             << duplicates);
}

TEST_CASE("outage: two relays, one down for the whole run; everything goes through the other") {
  const int n = 2000;
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  const auto dead_port = budstikke::support::free_loopback_port();
  auto config = write_config(dir, redis, sink.port);
  auto text = slurp(config);
  const std::string one = "  port: " + std::to_string(sink.port) + "\n";
  text.replace(text.find(one), one.size(),
               "  relays:\n    - { port: " + std::to_string(dead_port) + " }\n    - { port: " + std::to_string(sink.port) +
                   " }\n");
  std::ofstream(config) << text;
  enqueue_newsletter(dir, config, "two", write_members(dir, n));
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, 180s);
  INFO(run.output);
  CHECK(run.code == 0);
  auto s = campaign_status(dir, config, "two");
  require_nothing_failed(s, n);
  CHECK(field(s, "sent") == n);
  require_each_once(arrivals(maildir), n);
}

TEST_CASE("outage: a certificate for another host, or refused credentials: nothing sent, nothing failed, the reason in status") {
  namespace tp = budstikke::testpeers;
  struct wrong {
    std::string name;
    bool tls_wrong;  // else: the password is wrong
  };
  for (const auto& w : {wrong{"certificate for another host", true}, wrong{"refused AUTH", false}}) {
    DYNAMIC_SECTION(w.name) {
      const int n = 500;
      temp_dir dir;
      auto redis = start_redis(dir);
      auto maildir = dir / "mail";
      auto ca = tp::make_test_ca("outage test CA");
      tp::cert_spec good;  // localhost, 127.0.0.1
      tp::cert_spec other{.common_name = "relay.other.example", .dns_names = {"relay.other.example"}, .ip_addresses = {}};
      tp::write_pem_files(tp::make_test_certificate(w.tls_wrong ? other : good, &ca), dir / "relay.pem", dir / "relay.key");
      tp::write_pem_files(ca, dir / "ca.pem", dir / "ca.key");
      auto start_sink = [&](const std::string& log, std::uint16_t port) {
        return start_own_sink(dir, {"--maildir", maildir.string(), "--tls-cert", (dir / "relay.pem").string(),
                                    "--tls-key", (dir / "relay.key").string(), "--auth", "forbundet:riktig"},
                              port, log);
      };
      auto sink = start_sink("sink.log", 0);
      auto write_engine_config = [&](const std::string& password) {
        std::ofstream(dir / "smtp-password") << password;
        auto config = write_config(dir, redis, sink.port);
        auto text = slurp(config);
        auto at = text.find("  connections: 4\n");
        text.insert(at, "  tls: starttls\n  ca_file: " + (dir / "ca.pem").string() + "\n  username: forbundet\n"
                        "  password_file: " + (dir / "smtp-password").string() + "\n");
        std::ofstream(config) << text;
        return config;
      };
      auto config = write_engine_config(w.tls_wrong ? "riktig" : "feil");
      enqueue_newsletter(dir, config, "wrong", write_members(dir, n));

      auto engine = start_engine(dir, config, "engine.log", {"--max-wait", "8"});
      auto path = suspended_path(dir, config, "wrong", 20s);
      const std::string reason(path.at("reason").as_string());
      INFO(reason);
      if (w.tls_wrong) {
        CHECK(reason.find("certificate") != std::string::npos);
      } else {
        CHECK(reason.find("credentials") != std::string::npos);
      }
      // --max-wait: the engine stops waiting, exit 3, the work still pending.
      CHECK(wait_engine(engine, dir, "engine.log", 120s) == 3);
      auto s = campaign_status(dir, config, "wrong");
      CHECK(field(s, "failed") == 0);
      CHECK(field(s, "sent") == 0);
      CHECK(field(s, "pending") == n);
      CHECK(lines_in(maildir / "recipients.log") == 0);
      CHECK(slurp(dir / "engine.log").find("gave up waiting") != std::string::npos);

      // Fixed: the relay gets the right certificate (restarted on its port), or the engine the
      // right password.
      if (w.tls_wrong) {
        sink.process.stop();
        tp::write_pem_files(tp::make_test_certificate(good, &ca), dir / "relay.pem", dir / "relay.key");
        sink = start_sink("sink-fixed.log", sink.port);
      }
      config = write_engine_config("riktig");
      auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, 180s);
      INFO(run.output);
      CHECK(run.code == 0);
      s = campaign_status(dir, config, "wrong");
      require_nothing_failed(s, n);
      CHECK(field(s, "sent") == n);
      require_each_once(arrivals(maildir), n);
    }
  }
}

TEST_CASE("outage: the SMS gateway is down at the start and goes away mid-campaign; nothing fails, each number once") {
  const int n = long_run() ? 20000 : 3000;
  const auto outage = long_run() ? 20s : 4s;
  temp_dir dir;
  auto redis = start_redis(dir);
  const auto port = budstikke::support::free_loopback_port();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/cgi-bin/sendsms";
  auto config = write_sms_config(dir, redis, url, "    kind: kannel\n    concurrency: 2\n    connect_timeout_ms: 500\n");
  enqueue_sms(dir, config, "sms-outage", write_sms_members(dir, n));

  auto engine = start_engine(dir, config, "engine.log");
  auto path = suspended_path(dir, config, "sms-outage", 20s);
  CHECK(path.at("kind").as_string() == "sms");
  CHECK(path.at("reason").as_string().find("cannot reach the gateway") != std::string::npos);
  std::this_thread::sleep_for(outage);
  auto sink = start_sms_sink(dir, {}, port, "sms-sink-1.log");
  wait_for_lines(dir / "sms.jsonl", n / 4, 120s);
  sink.process.signal(SIGKILL);
  sink.process.wait();
  std::this_thread::sleep_for(outage);
  auto back = start_sms_sink(dir, {}, port, "sms-sink-2.log");
  CHECK(wait_engine(engine, dir, "engine.log", 300s) == 0);

  auto s = campaign_status(dir, config, "sms-outage");
  require_nothing_failed(s, n);
  std::int64_t duplicates = 0;
  auto seen = sms_arrivals(dir);
  count_arrivals(seen, &duplicates);
  // A request written when the gateway went away is ambiguous (never resent for SMS); every
  // other number arrived exactly once.
  CHECK(duplicates == 0);
  CHECK(field(s, "sent") + field(s, "ambiguous") == n);
  CHECK(static_cast<std::int64_t>(seen.size()) >= field(s, "sent"));
  // Suspended at the start and again mid-campaign (each change said once, not per message).
  const auto suspended_lines = occurrences(slurp(dir / "engine.log"), "sms gateway suspended");
  CHECK(suspended_lines >= 2);
  CHECK(suspended_lines <= 8);
  WARN("SMS gateway down " << outage.count() << " s at the start and again mid-campaign: " << n
                           << " numbers, sent " << field(s, "sent") << ", ambiguous " << field(s, "ambiguous"));
}

TEST_CASE("outage: a relay that answers 451 to 5 % and 550 to 1 %: those are charged per message, the rest sent") {
  const int n = 3000;
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  // 5 %: 451 at random (RCPT or the dot), so retried and then sent; a few of them (i % 200 == 7)
  // deferred every time, so failed once deferred longer than max_retry_age; 1 % (i % 100 == 0)
  // unknown users, failed at once.
  std::map<int, std::string> special;
  for (int i = 0; i < n; ++i) {
    if (i % 100 == 0) special[i] = fmt::format(R"({{"to":"ukjent{}@avd1.example","id":"M{}","name":"X"}})", i, i);
    if (i % 200 == 7) special[i] = fmt::format(R"({{"to":"treg{}@avd2.example","id":"M{}","name":"X"}})", i, i);
  }
  auto sink = start_own_sink(dir, {"--maildir", maildir.string(), "--transient-share", "0.05", "--seed", "5",
                                   "--reject-rcpt-containing", "ukjent", "--defer-rcpt-containing", "treg"});
  auto config = write_config(dir, redis, sink.port, "  retry_poll_ms: 20\n  max_retry_age_ms: 3000\n");
  enqueue_newsletter(dir, config, "faults", write_members(dir, n, special));
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, 180s);
  INFO(run.output);
  REQUIRE(run.code == 0);

  auto s = campaign_status(dir, config, "faults");
  require_adds_up(s, n);
  const std::int64_t unknown = n / 100, deferred = n / 200;
  CHECK(field(s, "failed") == unknown + deferred);
  CHECK(field(s, "sent") == n - unknown - deferred);
  CHECK(field(s, "dead_letters") == unknown + deferred);
  auto reasons = outcome_reasons(redis, "faults");
  int too_old = 0, rejected = 0;
  for (auto& [member, reason] : reasons) {
    if (reason.find("max_retry_age") != std::string::npos && reason.find("451") != std::string::npos) ++too_old;
    if (reason.rfind("550 5.1.1", 0) == 0) ++rejected;
  }
  CHECK(too_old == deferred);
  CHECK(rejected == unknown);
  auto seen = arrivals(maildir);
  CHECK(static_cast<std::int64_t>(seen.size()) == field(s, "sent"));
  for (auto& [addr, count] : seen) CHECK(count == 1);
  CHECK(field(s, "retrying") == 0);
}
