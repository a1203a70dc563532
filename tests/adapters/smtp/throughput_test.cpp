// Quick throughput runs (hidden: `smtp_tests "[bench]"`); `budstikke bench` is the real measure.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "testpeers/smtp_sink.hpp"
#include "harness.hpp"
#include "support/process.hpp"

using namespace budstikke;
using namespace budstikke::adapters;
using std::chrono::milliseconds;

namespace {

// Keeps `window` deliveries in flight, like the engine does, re-pushing each finished slot.
struct window_driver final : delivery_listener {
  smtp::pool* pool = nullptr;
  std::size_t remaining = 0, done = 0, total = 0, accepted = 0;
  void on_delivered(delivery& d) override {
    ++done;
    if (d.result == outcome::accepted) ++accepted;
    if (remaining > 0) {
      --remaining;
      pool->push(d);
    } else if (done == total) {
      pool->close();
    }
  }
};

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::size_t bench_messages() {
  const char* n = std::getenv("BUDSTIKKE_BENCH_MESSAGES");
  return n ? std::stoul(n) : 100000;
}

void run_bench(const char* name, std::uint16_t port, std::size_t total) {
  boost::asio::io_context io(1);
  window_driver driver;
  smtp::relay_config cfg;
  cfg.port = port;
  cfg.connections = 8;
  cfg.max_messages_per_connection = 100000;
  smtp::pool pool(io.get_executor(), cfg, driver);
  driver.pool = &pool;
  driver.total = total;
  std::size_t window = std::min<std::size_t>(256, total);
  auto slots = test::make_deliveries(window);
  std::string body = "Subject: bench\r\n\r\n";
  while (body.size() < 4096) body += "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.\r\n";
  for (auto& d : slots) d.data = body;
  driver.remaining = total - window;
  double cpu0 = cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  for (auto& d : slots) pool.push(d);
  bool closed = false;
  boost::asio::co_spawn(
      io, [&]() -> boost::asio::awaitable<void> { co_await pool.async_wait_closed(); closed = true; },
      boost::asio::detached);
  io.run_for(std::chrono::seconds(120));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu = cpu_seconds() - cpu0;
  REQUIRE(closed);
  CHECK(driver.accepted == total);
  std::printf("%s: %zu messages (4 KiB) over 8 connections in %.2f s = %.0f msg/s; this process used %.2f s CPU\n",
              name, total, secs, static_cast<double>(total) / secs, cpu);
  std::fflush(stdout);
}

}  // namespace

TEST_CASE("smtp throughput: pool to own sink (sink on its own thread)", "[.][bench]") {
  boost::asio::io_context sink_io(1);
  testpeers::smtp_sink server(sink_io.get_executor(), {});
  auto guard = boost::asio::make_work_guard(sink_io);
  std::thread sink_thread([&] { sink_io.run(); });
  run_bench("pool -> own sink", server.port(), bench_messages());
  boost::asio::post(sink_io, [&] { server.stop(); guard.reset(); });
  sink_thread.join();
  std::printf("sink counted %llu messages\n", static_cast<unsigned long long>(server.statistics().messages));
}

TEST_CASE("smtp throughput: pool to postfix smtp-sink", "[.][bench]") {
  if (!std::filesystem::exists("/usr/sbin/smtp-sink")) {
    WARN("SKIPPED: /usr/sbin/smtp-sink is not installed");
    return;
  }
  std::uint16_t port = support::free_loopback_port();
  std::vector<std::string> argv{"/usr/sbin/smtp-sink"};
  if (::geteuid() == 0) argv.insert(argv.end(), {"-u", "nobody"});
  argv.insert(argv.end(), {"127.0.0.1:" + std::to_string(port), "1000"});
  auto child = support::child_process::spawn(argv, std::string("/dev/null"));
  REQUIRE(support::wait_for_port(port, milliseconds(5000)));
  run_bench("pool -> postfix smtp-sink", port, bench_messages());
  auto st = child.stop();
  std::printf("smtp-sink used %.2f s CPU\n",
              static_cast<double>(st.usage.ru_utime.tv_sec + st.usage.ru_stime.tv_sec) +
                  static_cast<double>(st.usage.ru_utime.tv_usec + st.usage.ru_stime.tv_usec) / 1e6);
}
