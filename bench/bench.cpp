#include "testpeers/throwaway_cert.hpp"
#include "bench/bench.hpp"
#include "bench/timeline.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>

#include "queue/campaign_store.hpp"
#include "queue/consent.hpp"
#include "support/json.hpp"
#include "support/process.hpp"
#include "support/run_sync.hpp"
#include "support/rfc3339.hpp"

namespace budstikke::bench {
namespace asio = boost::asio;
namespace fs = std::filesystem;

void add_bench_options(CLI::App* cmd, bench_options& o) {
  cmd->add_option("--recipients", o.recipients, "Synthetic recipients to send to")->check(CLI::Range(1ULL, 100000000ULL))->capture_default_str();
  cmd->add_option("--workers", o.workers, "Engine shards; 0 = one per core")->check(CLI::Range(0, 256))->capture_default_str();
  cmd->add_option("--window", o.window, "In-flight messages per shard")->check(CLI::Range(1, 1000000))->capture_default_str();
  cmd->add_option("--connections", o.connections, "SMTP connections per shard")->check(CLI::Range(1, 1000))->capture_default_str();
  cmd->add_option("--sink", o.sink, "own (budstikke sink smtp) or postfix (/usr/sbin/smtp-sink)")
      ->check(CLI::IsMember({"own", "postfix"}))->capture_default_str();
  cmd->add_option("--relay", o.relay, "HOST:PORT of an existing SMTP relay instead of starting a sink");
  cmd->add_option("--redis", o.redis_url, "An existing Redis (redis://...) instead of starting one; the bench only adds its own campaign");
  cmd->add_flag("--json", o.json, "Print the result as one JSON object");
  cmd->add_flag("--keep", o.keep, "Keep the work directory with logs and config");
  cmd->add_option("--plot", o.plot, "Draw throughput and in-flight messages over time into this PNG (needs gnuplot)");
  cmd->add_option("--transient-share", o.transient_share, "Fault: share (0..1) of messages the own SMTP sink answers 451")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--drop-after-dot-share", o.drop_after_dot_share, "Fault: share (0..1) of messages whose connection the own SMTP sink drops after the final dot")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--reply-delay-ms", o.reply_delay_ms, "Fault: the own SMTP sink delays every reply (a slow relay)")->check(CLI::Range(0, 60000));
  cmd->add_option("--consent", o.consent,
                  "granted (newsletter needing consent, a grant per member), lookup (consent read, none recorded) or off (not read)")
      ->check(CLI::IsMember({"granted", "lookup", "off"}))->capture_default_str();
  cmd->add_flag("--tls", o.tls, "STARTTLS: the own sink gets a throwaway certificate, the engine verifies it");
  cmd->add_option("--channel", o.channel, "email (SMTP sink) or sms (the own SMS gateway sink, Kannel kind)")
      ->check(CLI::IsMember({"email", "sms"}))->capture_default_str();
  cmd->add_option("--sms-429-share", o.sms_429_share, "sms: share (0..1) of requests the sink answers 429 with Retry-After: 1")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--sms-concurrency", o.sms_concurrency, "sms: gateway requests in flight per shard")
      ->check(CLI::Range(1, 1000))->capture_default_str();
  cmd->add_flag("!--no-events", o.events, "Write no events stream (engine.events_max_len: 0), to see what it costs");
  cmd->add_option("--global-limit", o.global_limit,
                  "limits.global in messages per second (the rate-limit script runs for every batch); 0 = none")
      ->check(CLI::Range(0.0, 1e6));
}

namespace {

// Synthetic Norwegian members; names with æøå so encoding work is real.
constexpr const char* first_names[] = {"Åse", "Ørjan", "Kari", "Håkon", "Bjørg", "Ola", "Sølvi", "Æsa", "Jørgen", "Tove"};
constexpr const char* last_names[] = {"Hansen", "Sæther", "Nordmann", "Løvås", "Bråthen", "Aas", "Østby", "Dæhli"};
constexpr const char* branches[] = {"Oslo", "Tromsø", "Bodø", "Førde", "Ålesund", "Kristiansand"};

std::string synthetic_data(std::uint64_t i) {
  return fmt::format(R"({{"name":"{} {}","branch":"{}","member_since":{},"dues_paid":{}}})",
                     first_names[i % 10], last_names[(i / 10) % 8], branches[(i / 7) % 6], 1990 + i % 35,
                     i % 5 != 0 ? "true" : "false");
}

const char* sms_template =
    "Hei {{name}}! Tariffoppgjøret er klart: 5,2 % fra 1. mai for {{branch}}. Uravstemningen åpner mandag. "
    "Les mer på Min side.";

// Norwegian mobile numbers (9xxxxxxx), one per member.
std::string synthetic_number(std::uint64_t i) { return fmt::format("9{:07}", i % 10000000); }

// A count from the SMS sink's exit line ("... in_backoff=0 ..."), or -1.
long long sink_count(const fs::path& log, std::string_view name) {
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto at = text.rfind(" " + std::string(name) + "=");
  if (at == std::string::npos) return -1;
  return std::strtoll(text.c_str() + at + name.size() + 2, nullptr, 10);
}

const char* subject_template = "Tariffoppgjøret 2026: resultatet for {{branch}}";
const char* text_template =
    "Hei {{name}},\n\n"
    "Forhandlingene er avsluttet, og her er resultatet for medlemmer i {{branch}}.\n"
    "{{#dues_paid}}Takk for at du er medlem siden {{member_since}}.{{/dues_paid}}"
    "{{^dues_paid}}Vi ser at kontingenten ikke er betalt; logg inn på Min side.{{/dues_paid}}\n\n"
    "Lønnstillegget er 5,2 prosent fra 1. mai. Uravstemningen åpner mandag og stenger fredag kl. 12.\n"
    "Les hele protokollen på medlemssidene. Har du spørsmål, ta kontakt med tillitsvalgt.\n\n"
    "Med vennlig hilsen\nForbundet\n";
const char* html_template =
    "<!doctype html><html><body><h1>Tariffoppgjøret 2026</h1>"
    "<p>Hei {{name}},</p><p>Forhandlingene er avsluttet, og her er resultatet for medlemmer i {{branch}}.</p>"
    "{{#dues_paid}}<p>Takk for at du er medlem siden {{member_since}}.</p>{{/dues_paid}}"
    "<p>Lønnstillegget er <strong>5,2 prosent</strong> fra 1. mai. Uravstemningen åpner mandag.</p>"
    "<p>Med vennlig hilsen<br>Forbundet</p></body></html>\n";

using support::run_sync;

std::int64_t redis_used_memory(const queue::redis_config& rc) {
  return run_sync([&]() -> asio::awaitable<std::int64_t> {
    queue::connection conn(co_await asio::this_coro::executor, rc);
    queue::request req;
    req.command("INFO", "memory");
    std::vector<queue::reply_ptr> replies;
    if (co_await conn.async_exec(req, replies)) co_return -1;
    auto text = queue::as_string(replies[0].get());
    auto pos = text.find("used_memory:");
    if (pos == std::string_view::npos) co_return -1;
    co_return std::strtoll(text.data() + pos + 12, nullptr, 10);
  }());
}

double cpu_seconds(const rusage& u) {
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int run_bench(const bench_options& opt) {
  char tmpl[] = "/tmp/budstikke-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("cannot create a work directory in /tmp");
  fs::path work(tmpl);
  auto say = [&](const std::string& s) {
    if (!opt.json) std::cerr << s << std::endl;
  };

  // Redis
  support::child_process redis;
  queue::redis_config rc;
  if (opt.redis_url.empty()) {
    auto port = support::free_loopback_port();
    redis = support::child_process::spawn(
        {"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", work.string(), "--logfile", (work / "redis.log").string()});
    if (!support::wait_for_port(port, std::chrono::seconds(10))) throw std::runtime_error("redis-server did not start");
    rc.port = port;
  } else {
    auto parsed = queue::parse_redis_url(opt.redis_url);
    if (!parsed) throw std::runtime_error("--redis: " + parsed.error().message);
    rc = *parsed;
  }

  // SMTP sink
  support::child_process sink;
  std::string relay_host = "127.0.0.1";
  std::uint16_t relay_port = 0;
  std::string sink_name = opt.sink;
  if (opt.tls && (opt.sink == "postfix" || !opt.relay.empty()))
    throw std::runtime_error("--tls needs the own sink (smtp-sink and --relay have no throwaway certificate)");
  if (!opt.relay.empty()) {
    auto colon = opt.relay.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("--relay: expected HOST:PORT");
    relay_host = opt.relay.substr(0, colon);
    relay_port = static_cast<std::uint16_t>(std::stoi(opt.relay.substr(colon + 1)));
    sink_name = "relay " + opt.relay;
  } else {
    relay_port = support::free_loopback_port();
    auto listen = fmt::format("127.0.0.1:{}", relay_port);
    if (opt.sink == "postfix") {
      if (::access("/usr/sbin/smtp-sink", X_OK) != 0)
        throw std::runtime_error("--sink postfix: /usr/sbin/smtp-sink is not installed (Debian package postfix)");
      std::vector<std::string> argv{"/usr/sbin/smtp-sink"};
      if (::geteuid() == 0) argv.insert(argv.end(), {"-u", "nobody"});  // it refuses to run as root otherwise
      argv.insert(argv.end(), {listen, "1024"});
      sink = support::child_process::spawn(argv, (work / "sink.log").string());
    } else if (opt.channel == "sms") {
      sink_name = "own SMS sink (kannel)";
      std::vector<std::string> argv{support::self_executable(), "sink", "sms", "--listen", listen};
      if (opt.sms_429_share > 0) {
        argv.insert(argv.end(), {"--429-share", fmt::format("{}", opt.sms_429_share), "--retry-after", "1"});
        sink_name += fmt::format(", {:g} % 429 Retry-After: 1", opt.sms_429_share * 100);
      }
      sink = support::child_process::spawn(argv, (work / "sink.log").string());
    } else {
      std::vector<std::string> argv{support::self_executable(), "sink", "smtp", "--listen", listen,
                                    "--transient-share", fmt::format("{}", opt.transient_share),
                                    "--drop-after-dot-share", fmt::format("{}", opt.drop_after_dot_share),
                                    "--reply-delay-ms", std::to_string(opt.reply_delay_ms)};
      if (opt.tls) {
        auto ca = testpeers::make_test_ca("budstikke bench CA");
        std::ofstream(work / "ca.pem", std::ios::binary) << ca.cert;
        testpeers::write_pem_files(testpeers::make_test_certificate({}, &ca), work / "sink.crt",
                                        work / "sink.key");
        argv.insert(argv.end(), {"--tls-cert", (work / "sink.crt").string(), "--tls-key", (work / "sink.key").string()});
        sink_name += " STARTTLS";
      }
      sink = support::child_process::spawn(argv, (work / "sink.log").string());
    }
    if (!support::wait_for_port(relay_port, std::chrono::seconds(10))) throw std::runtime_error("the SMTP sink did not start");
  }

  // Enqueue
  auto campaign = fmt::format("bench-{}-{}", ::getpid(), std::chrono::system_clock::now().time_since_epoch().count() % 1000000);
  auto mem_before = redis_used_memory(rc);
  say(fmt::format("enqueueing {} recipients (campaign {}) ...", opt.recipients, campaign));
  auto enqueue_start = std::chrono::steady_clock::now();
  std::string error;
  auto ec = run_sync([&]() -> asio::awaitable<std::error_code> {
    queue::connection conn(co_await asio::this_coro::executor, rc);
    queue::campaign_definition def;
    def.id = campaign;
    def.category = opt.consent == "granted" ? "newsletter" : opt.consent == "off" ? "receipt" : "tariff";
    def.tenant = "bench";
    def.priority = 5;
    def.from_address = "nyheter@forbundet.example";
    def.from_name = "Forbundet Øst";
    def.created_at = support::now_rfc3339();
    def.templates = {{"subject", subject_template}, {"text", text_template}, {"html", html_template}};
    if (opt.channel == "sms") {
      def.kind = queue::channel::sms;
      def.from_address = "Forbundet";
      def.templates = {{"sms", sms_template}};
    }
    if (opt.consent == "granted") {
      // What a portal records when members subscribe, before the campaign exists.
      queue::request grants;
      std::vector<queue::reply_ptr> replies;
      auto grant = queue::format_consent(true, support::now_rfc3339(), "bench");
      auto field = queue::consent_field(def.kind, def.category);
      for (std::uint64_t i = 0; i < opt.recipients; ++i) {
        grants.command("HSET", queue::consent_key(queue::keys(), fmt::format("M{:07}", i)), field, grant);
        if (grants.commands() == 2000 || i + 1 == opt.recipients) {
          if (auto ec = co_await conn.async_exec(grants, replies)) {
            error = "recording consent: " + ec.message();
            co_return ec;
          }
          grants.clear();
        }
      }
    }
    queue::campaign_writer writer(conn, queue::keys(), def, 2000);
    auto report = [&](const support::result<void>& written) {
      if (written) return std::error_code{};
      error = written.error().message;
      return written.error().code;
    };
    if (auto created = co_await writer.async_create(); !created) co_return report(created);
    for (std::uint64_t i = 0; i < opt.recipients; ++i) {
      writer.add(opt.channel == "sms" ? synthetic_number(i) : fmt::format("medlem{}@fagforbund{}.example", i, i % 50),
                 fmt::format("M{:07}", i), synthetic_data(i));
      if (writer.should_flush())
        if (auto flushed = co_await writer.async_flush(); !flushed) co_return report(flushed);
    }
    co_return report(co_await writer.async_seal());
  }());
  if (ec) throw std::runtime_error("enqueue: " + error);
  double enqueue_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - enqueue_start).count();
  auto mem_after = redis_used_memory(rc);

  // Engine
  auto config_path = work / "bench.yaml";
  const auto admin_port = support::free_loopback_port();
  {
    std::ofstream cfg(config_path);
    cfg << fmt::format(
        "redis:\n  url: redis://{}:{}/{}\nengine:\n  workers: {}\n  window: {}\n  admin_listen: 127.0.0.1:{}\n{}"
        "smtp:\n  host: {}\n  port: {}\n  connections: {}\n  max_messages_per_connection: 100000\n",
        rc.host, rc.port, rc.database, opt.workers, opt.window, admin_port,
        opt.events ? "" : "  events_max_len: 0\n", relay_host, relay_port, opt.connections);
    if (opt.channel == "sms") {
      // With 429s, what one back-off cycle can send is about the concurrency: raise it to go faster.
      cfg << fmt::format("sms:\n  gateway:\n    kind: kannel\n    url: http://{}:{}/cgi-bin/sendsms\n    concurrency: {}\n",
                         relay_host, relay_port, opt.sms_concurrency);
    }
    if (opt.tls && opt.relay.empty() && opt.sink != "postfix") {
      cfg << fmt::format("  tls: starttls\n  tls_verify: true\n  ca_file: {}\n  tls_server_name: localhost\n",
                         (work / "ca.pem").string());
    }
    if (opt.consent == "off") cfg << "categories:\n  receipt:\n    check_consent: false\n";
    if (opt.global_limit > 0) cfg << fmt::format("limits:\n  global: {}\n", opt.global_limit);
  }
  say(fmt::format("running the engine ({} workers, window {}, {} connections per shard) against {} ...",
                  opt.workers == 0 ? std::thread::hardware_concurrency() : static_cast<unsigned>(opt.workers),
                  opt.window, opt.connections, sink_name));
  auto run_start = std::chrono::steady_clock::now();
  auto engine = support::child_process::spawn(
      {support::self_executable(), "--log-level", "warn", "run", "--until-idle", "--config", config_path.string(),
       "--report", (work / "report.json").string()},
      (work / "engine.log").string());
  timeline samples(admin_port);
  std::optional<support::exit_status> exited;
  while (!(exited = engine.wait_for(timeline::interval))) samples.sample();
  auto status = *exited;
  auto latency = read_latency_report(work / "report.json").value_or(latency_report{});
  std::string plot_problem;
  if (!opt.plot.empty())
    plot_problem = samples.plot(opt.plot, work, fmt::format("budstikke bench: {} recipients, {}", opt.recipients, sink_name));
  double run_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();

  auto st = run_sync([&]() -> asio::awaitable<support::result<queue::campaign_status>> {
    queue::connection conn(co_await asio::this_coro::executor, rc);
    co_return co_await queue::async_read_status(conn, queue::keys(), campaign);
  }());
  sink.stop();
  redis.stop();

  if (!st) throw std::runtime_error("reading the campaign status: " + st.error().message);
  double cpu = cpu_seconds(status.usage);
  double rate = static_cast<double>(opt.recipients) / run_secs;
  double cpu_us = cpu * 1e6 / static_cast<double>(opt.recipients);
  double rss_mb = static_cast<double>(status.usage.ru_maxrss) / 1024.0;
  double redis_bytes = mem_after > 0 && mem_before >= 0
                           ? static_cast<double>(mem_after - mem_before) / static_cast<double>(opt.recipients)
                           : 0.0;
  bool adds_up = st->done() == static_cast<std::int64_t>(opt.recipients) && st->state == "done";
  bool ok = status.exited_normally() && adds_up;
  // sms: the gateway's 429s, and requests that came during a back-off window it announced (must be 0).
  // in_backoff is an upper bound (requests still on their way when the 429 left count if they arrive
  // after the sink's grace); in_backoff_same_connection is exact and must be 0.
  long long throttled = -1, in_backoff = -1, in_backoff_exact = -1;
  if (opt.channel == "sms" && opt.relay.empty()) {
    throttled = sink_count(work / "sink.log", "throttled");
    in_backoff = sink_count(work / "sink.log", "in_backoff");
    in_backoff_exact = sink_count(work / "sink.log", "in_backoff_same_connection");
    ok = ok && in_backoff_exact == 0;
  }

  if (opt.json) {
    using support::rounded;
    boost::json::object r;
    r["recipients"] = opt.recipients;
    r["workers"] = opt.workers;
    r["window"] = opt.window;
    r["connections"] = opt.connections;
    r["sink"] = sink_name;
    r["seconds"] = rounded(run_secs, 3);
    r["msg_per_s"] = rounded(rate, 0);
    r["engine_cpu_s"] = rounded(cpu, 3);
    r["engine_cpu_us_per_msg"] = rounded(cpu_us, 1);
    r["engine_peak_rss_mb"] = rounded(rss_mb, 1);
    r["redis_bytes_per_recipient"] = rounded(redis_bytes, 0);
    r["latency_p50_s"] = rounded(latency.p50, 3);
    r["latency_p95_s"] = rounded(latency.p95, 3);
    r["latency_p99_s"] = rounded(latency.p99, 3);
    r["relay_p50_ms"] = rounded(latency.relay_p50 * 1000, 2);
    r["relay_p99_ms"] = rounded(latency.relay_p99 * 1000, 2);
    r["peak_in_flight"] = samples.peak_in_flight();
    r["enqueue_s"] = rounded(enqueue_secs, 3);
    r["sent"] = st->count(queue::final_state::sent);
    r["failed"] = st->count(queue::final_state::failed);
    r["skipped"] = st->count(queue::final_state::skipped);
    r["ambiguous"] = st->count(queue::final_state::ambiguous);
    r["state"] = st->state;
    r["engine_exit"] = status.code;
    r["gateway_429"] = throttled;
    r["requests_in_backoff"] = in_backoff;
    r["requests_in_backoff_same_connection"] = in_backoff_exact;
    r["ok"] = ok;
    std::cout << support::json_line(r) << std::flush;
  } else {
    std::cout << fmt::format(
        "recipients        {}\n"
        "sink              {}\n"
        "enqueue           {:.2f} s ({:.0f}/s), Redis {:.0f} bytes per recipient\n"
        "engine run        {:.2f} s\n"
        "throughput        {:.0f} msg/s\n"
        "engine CPU        {:.2f} s ({:.1f} µs per message)\n"
        "engine peak RSS   {:.1f} MB\n"
        "latency           enqueue to accepted p50 {:.2f} s, p95 {:.2f} s, p99 {:.2f} s; relay round trip p50 {:.2f} ms, p99 {:.2f} ms\n"
        "in flight         at most {} messages read and not yet recorded\n"
        "outcome           sent {} failed {} skipped {} ambiguous {} (state {}, engine exit {})\n",
        opt.recipients, sink_name, enqueue_secs, static_cast<double>(opt.recipients) / enqueue_secs, redis_bytes,
        run_secs, rate, cpu, cpu_us, rss_mb, latency.p50, latency.p95, latency.p99, latency.relay_p50 * 1000,
        latency.relay_p99 * 1000, samples.peak_in_flight(), st->count(queue::final_state::sent),
        st->count(queue::final_state::failed), st->count(queue::final_state::skipped),
        st->count(queue::final_state::ambiguous), st->state, status.code);
    if (throttled >= 0)
      std::cout << fmt::format(
          "gateway           {} answers 429; requests inside a back-off window: {} on the connection that "
          "carried the 429 (exact), {} anywhere after a {} ms grace (upper bound)\n",
          throttled, in_backoff_exact, in_backoff, 50);
    if (!opt.plot.empty())
      std::cout << (plot_problem.empty() ? "plot              " + opt.plot + "\n" : "plot              not drawn: " + plot_problem + "\n");
    if (!ok) std::cout << "NOT OK: the counts do not add up or the engine failed; see " << work << "\n";
  }
  if (!opt.keep && ok) fs::remove_all(work);
  else if (!opt.json) std::cerr << "work directory kept: " << work << "\n";
  return ok ? 0 : 1;
}

}  // namespace budstikke::bench
