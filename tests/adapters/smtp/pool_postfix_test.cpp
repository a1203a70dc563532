// The pool against Postfix's smtp-sink, started as a child process on a free loopback port.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include "harness.hpp"
#include "support/process.hpp"

using namespace budstikke;
using namespace budstikke::adapters;
using std::chrono::milliseconds;

namespace {

constexpr const char* smtp_sink_path = "/usr/sbin/smtp-sink";

// Starts smtp-sink with `flags` on a free port; nullopt (and a warning) when it is not installed.
std::optional<support::child_process> start_postfix_sink(const std::vector<std::string>& flags,
                                                         std::uint16_t& port) {
  if (!std::filesystem::exists(smtp_sink_path)) {
    WARN("SKIPPED: " << smtp_sink_path << " is not installed (Debian package postfix)");
    return std::nullopt;
  }
  port = support::free_loopback_port();
  std::vector<std::string> argv{smtp_sink_path};
  if (::geteuid() == 0) argv.insert(argv.end(), {"-u", "nobody"});  // it refuses to run as root
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), {"127.0.0.1:" + std::to_string(port), "1000"});
  auto child = support::child_process::spawn(argv, std::string("/dev/null"));
  REQUIRE(support::wait_for_port(port, milliseconds(5000)));
  return child;
}

struct outcome_counts {
  test::counting_listener listener;
  smtp::pool::stats stats{};
  std::vector<delivery> deliveries;
};

// Sends n messages; the deliveries come back with their outcomes.
outcome_counts run_against(std::uint16_t port, std::size_t n, std::size_t connections) {
  boost::asio::io_context io;
  outcome_counts out;
  smtp::relay_config cfg;
  cfg.port = port;
  cfg.connections = connections;
  cfg.reconnect_backoff_min = milliseconds(5);
  cfg.reconnect_backoff_max = milliseconds(20);
  smtp::pool pool(io.get_executor(), cfg, out.listener);
  out.deliveries = test::make_deliveries(n);
  REQUIRE(test::push_all_and_close(io, pool, out.deliveries, milliseconds(15000), [] {}));
  out.stats = pool.statistics();
  return out;
}

}  // namespace

TEST_CASE("smtp pool to postfix smtp-sink: everything accepted", "[smtp][pool][postfix]") {
  std::uint16_t port = 0;
  auto child = start_postfix_sink({}, port);
  if (!child) return;
  auto r = run_against(port, 2000, 4);
  CHECK(r.listener.count(outcome::accepted) == 2000);
  CHECK(r.stats.connect_failures == 0);
  child->stop();
}

TEST_CASE("smtp pool to postfix smtp-sink: hard RCPT rejection, lock-step", "[smtp][pool][postfix]") {
  std::uint16_t port = 0;
  auto child = start_postfix_sink({"-f", "rcpt"}, port);  // -f implies no PIPELINING
  if (!child) return;
  auto r = run_against(port, 200, 2);
  CHECK(r.listener.count(outcome::permanent) == 200);
  for (auto& d : r.deliveries) CHECK(d.reply.rfind("5", 0) == 0);
  child->stop();
}

TEST_CASE("smtp pool to postfix smtp-sink: soft rejection of the final dot", "[smtp][pool][postfix]") {
  std::uint16_t port = 0;
  auto child = start_postfix_sink({"-r", "."}, port);
  if (!child) return;
  auto r = run_against(port, 200, 2);
  CHECK(r.listener.count(outcome::transient) == 200);
  for (auto& d : r.deliveries) CHECK(d.reply.rfind("4", 0) == 0);
  child->stop();
}

TEST_CASE("smtp pool to postfix smtp-sink: disconnect after the dot is ambiguous", "[smtp][pool][postfix]") {
  std::uint16_t port = 0;
  auto child = start_postfix_sink({"-q", "."}, port);
  if (!child) return;
  auto r = run_against(port, 50, 2);
  CHECK(r.listener.count(outcome::ambiguous) + r.listener.count(outcome::unsent) == 50);
  CHECK(r.listener.count(outcome::ambiguous) >= 25);  // one per connection at most rode along: unsent
  CHECK(r.listener.count(outcome::accepted) == 0);
  child->stop();
}
