#include "cli/run.hpp"

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "adapters/sms_http/protocol.hpp"
#include "admin/server.hpp"
#include "support/json.hpp"
#include "support/log.hpp"
#include "engine/metrics.hpp"
#include "engine/shard.hpp"

#include "cli/command.hpp"

namespace budstikke::cli {
namespace asio = boost::asio;
using engine::engine_totals;
using engine::shard;
namespace metrics = engine::metrics;

int run_engine(const config& cfg, bool until_idle, const std::string& report_file) {
  std::size_t workers = cfg.engine.workers;
  if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());

  engine_totals totals;
  std::vector<std::unique_ptr<shard>> shards;
  for (std::size_t i = 0; i < workers; ++i) shards.push_back(std::make_unique<shard>(cfg, i, until_idle, totals));
  metrics::global().expect_shards(workers);
  // Its own thread, never a shard's loop; up before the shards so /healthz answers during start-up.
  std::unique_ptr<admin::server> admin;
  if (auto listeners = admin::listeners_of(cfg.engine); !listeners.empty()) {
    admin = std::make_unique<admin::server>(listeners, metrics::global(), &cfg, admin::limits_of(cfg.engine));
    log::info("admin listening", {{"listen", cfg.engine.admin_listen}, {"port", admin->port()}});
    for (std::size_t i = 1; i < listeners.size(); ++i)
      log::info(listeners[i].serves == admin::serves_probes ? "probes listening" : "unsubscribe listening",
                {{"port", admin->port(i)}});
  }

  asio::io_context main_ioc(1);
  asio::signal_set signals(main_ioc, SIGINT, SIGTERM);
  int signals_seen = 0;
  std::function<void()> arm = [&] {
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (++signals_seen > 1) {
        // Second signal: leave now. Nothing unrecorded was acknowledged, so it stays pending.
        log::warn("second signal: exiting at once");
        std::_Exit(130);
      }
      log::info("signal received: finishing in-flight work", {{"signal", sig}});
      for (auto& s : shards) s->request_stop();
      arm();
    });
  };
  arm();

  // Once per relay, not per shard: whoever answers at that address gets the password.
  for (const auto& r : cfg.smtp.effective_relays())
    if (r.tls != adapters::smtp::tls_mode::none && !r.tls_verify && !r.username.empty())
      log::warn("smtp.tls_verify is false: the AUTH password goes to a relay whose certificate is not checked",
                {{"relay", r.name()}});
  log::info("engine starting", {{"workers", workers}, {"window", cfg.engine.window},
                                {"redis", queue::describe(cfg.redis)},
                                {"relay", fmt::format("{}:{}", cfg.smtp.host, cfg.smtp.port)}});
  if (cfg.sms.gateway && adapters::sms_http::credentials_in_clear(*cfg.sms.gateway))
    log::warn("the SMS gateway's credentials go over plain http:// to a host that is not loopback; use https://",
              {{"gateway", adapters::sms_http::gateway_name(*cfg.sms.gateway)}});
  auto started = std::chrono::steady_clock::now();
  std::atomic<std::size_t> running{workers};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (auto& s : shards) {
    threads.emplace_back([&, sp = s.get()] {
      if (!sp->run()) failed = true;
      if (--running == 0) asio::post(main_ioc, [&] { main_ioc.stop(); });
    });
  }
  main_ioc.run();
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  auto done = totals.sent + totals.failed + totals.skipped + totals.ambiguous;
  log::info("engine stopped", {{"sent", totals.sent.load()}, {"failed", totals.failed.load()},
                               {"skipped", totals.skipped.load()}, {"ambiguous", totals.ambiguous.load()},
                               {"handed_back", totals.handed_back.load()}, {"retries", totals.retries.load()},
                               {"campaigns_finished", totals.campaigns_finished.load()},
                               {"seconds", secs}, {"msg_per_s", secs > 0 ? done / secs : 0.0}});
  if (!report_file.empty()) {
    auto& m = metrics::global();
    boost::json::object report;
    report["seconds"] = support::rounded(secs, 3);
    report["sent"] = totals.sent.load();
    report["failed"] = totals.failed.load();
    report["skipped"] = totals.skipped.load();
    report["ambiguous"] = totals.ambiguous.load();
    report["msg_per_s"] = support::rounded(secs > 0 ? done / secs : 0.0, 1);
    report["enqueue_to_accepted_s"] = metrics::quantiles_json(m.enqueue_to_accepted());
    report["relay_roundtrip_s"] = metrics::quantiles_json(m.relay_roundtrip());
    std::ofstream(report_file) << support::json_line(report);
  }
  if (failed) return 1;
  if (totals.gave_up_waiting) {
    std::cerr << "budstikke run: gave up waiting for a suspended relay or gateway (--max-wait); its campaigns' "
                 "work is still pending (see `budstikke status`)\n";
    return exit_gave_up_waiting;
  }
  return 0;
}

void add_run(CLI::App& app, action& chosen) {
  struct options {
    common_options common;
    bool until_idle = false;
    int workers = -1;
    std::string report;
    double max_wait = 0;
  };
  auto o = std::make_shared<options>();
  auto* cmd = app.add_subcommand("run", "Run the engine: pull campaigns from Redis and send them");
  add_common(cmd, o->common);
  cmd->add_flag("--until-idle", o->until_idle, "Exit 0 once no campaign has pending work");
  cmd->add_option("--max-wait", o->max_wait,
                  "With --until-idle: stop waiting after SECONDS when only a suspended relay or gateway keeps work "
                  "pending (exit 3); default: wait until it is back")
      ->check(CLI::Range(0.1, 31536000.0));
  cmd->add_option("--report", o->report, "At exit, write counts, msg/s and latency quantiles to FILE as JSON");
  cmd->add_option("--workers", o->workers, "Shards (threads); default engine.workers, 0 = one per core")->check(CLI::Range(0, 256));
  cmd->callback([&chosen, o] {
    chosen = [o] {
      auto cfg = resolve_config(o->common);
      if (o->workers >= 0) cfg.engine.workers = static_cast<std::size_t>(o->workers);
      if (o->max_wait > 0) {
        if (!o->until_idle) throw config_error("--max-wait goes with --until-idle");
        cfg.engine.max_path_wait = std::chrono::milliseconds(static_cast<long long>(o->max_wait * 1000));
      }
      return run_engine(cfg, o->until_idle, o->report);
    };
  });
}

}  // namespace budstikke::cli
