#include "engine/runner.hpp"

#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>

#include "engine/admin_http.hpp"
#include "engine/log.hpp"
#include "engine/metrics.hpp"
#include "engine/shard.hpp"

namespace budstikke::engine {
namespace asio = boost::asio;

int run_engine(const config& cfg, bool until_idle, const std::string& report_file) {
  std::size_t workers = cfg.engine.workers;
  if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());

  engine_totals totals;
  std::vector<std::unique_ptr<shard>> shards;
  for (std::size_t i = 0; i < workers; ++i) shards.push_back(std::make_unique<shard>(cfg, i, until_idle, totals));
  metrics::global().expect_shards(workers);
  // Its own thread, never a shard's loop; up before the shards so /healthz answers during start-up.
  std::unique_ptr<admin_server> admin;
  if (!cfg.engine.admin_listen.empty()) {
    admin = std::make_unique<admin_server>(*parse_host_port(cfg.engine.admin_listen), metrics::global(), &cfg);
    log::info("admin listening", {{"listen", cfg.engine.admin_listen}, {"port", admin->port()}});
  }

  asio::io_context main_ioc(1);
  asio::signal_set signals(main_ioc, SIGINT, SIGTERM);
  int signals_seen = 0;
  std::function<void()> arm = [&] {
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (++signals_seen > 1) {
        // Second signal: leave now. Nothing unrecorded was acknowledged, so it stays pending.
        std::fputs("{\"level\":\"warn\",\"msg\":\"second signal: exiting at once\"}\n", stderr);
        std::_Exit(130);
      }
      log::info("signal received: finishing in-flight work", {{"signal", sig}});
      for (auto& s : shards) s->request_stop();
      arm();
    });
  };
  arm();

  log::info("engine starting", {{"workers", workers}, {"window", cfg.engine.window},
                                {"redis", queue::describe(cfg.redis)},
                                {"relay", fmt::format("{}:{}", cfg.smtp.host, cfg.smtp.port)}});
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
    std::ofstream(report_file) << fmt::format(
        R"({{"seconds":{:.3f},"sent":{},"failed":{},"skipped":{},"ambiguous":{},"msg_per_s":{:.1f},)"
        R"("enqueue_to_accepted_s":{},"relay_roundtrip_s":{}}})"
        "\n",
        secs, totals.sent.load(), totals.failed.load(), totals.skipped.load(), totals.ambiguous.load(),
        secs > 0 ? done / secs : 0.0, metrics::quantiles_json(m.enqueue_to_accepted()),
        metrics::quantiles_json(m.relay_roundtrip()));
  }
  return failed ? 1 : 0;
}

}  // namespace budstikke::engine
