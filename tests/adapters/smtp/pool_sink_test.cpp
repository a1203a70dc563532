// The pool against the project's own sink, in-process on port 0.
#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include <csignal>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <unistd.h>

#include "testpeers/smtp_sink.hpp"
#include "harness.hpp"
#include "support/process.hpp"

using namespace budstikke;
using namespace budstikke::adapters;
using std::chrono::milliseconds;

using test::read_file;

TEST_CASE("smtp pool to own sink: 2000 messages over 4 connections, stored byte for byte", "[smtp][pool]") {
  boost::asio::io_context io;
  auto dir = test::temp_dir("sink");
  testpeers::smtp_sink_options so;
  so.maildir = dir.string();
  testpeers::smtp_sink server(io.get_executor(), so);

  test::counting_listener listener;
  smtp::relay_config cfg;
  cfg.port = server.port();
  cfg.connections = 4;
  cfg.max_messages_per_connection = 300;  // also exercises QUIT and reconnect
  smtp::pool pool(io.get_executor(), cfg, listener);

  auto ds = test::make_deliveries(2000);
  REQUIRE(test::push_all_and_close(io, pool, ds, milliseconds(20000), [&] { server.stop(); }));

  CHECK(listener.delivered == ds.size());
  CHECK(listener.count(outcome::accepted) == ds.size());
  CHECK(pool.statistics().accepted == ds.size());
  CHECK(pool.statistics().connects >= 7);  // 2000 / 300 connections' worth
  CHECK(pool.statistics().connect_failures == 0);
  auto st = server.statistics();
  CHECK(st.messages == ds.size());
  CHECK(st.recipients == ds.size());
  CHECK(st.connections == pool.statistics().connects);
  for (auto& d : ds) CHECK(d.reply.rfind("250 2.0.0 Ok: queued as ", 0) == 0);

  // recipients.log says which file holds which recipient's message.
  std::ifstream log(dir / "recipients.log");
  std::string line;
  std::map<std::string, std::string> file_of;
  while (std::getline(log, line)) {
    auto tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    file_of[line.substr(tab + 1)] = line.substr(0, tab);
  }
  REQUIRE(file_of.size() == ds.size());
  std::size_t mismatches = 0;
  for (auto& d : ds) {
    std::string expected = d.data;
    if (expected.size() < 2 || expected.compare(expected.size() - 2, 2, "\r\n") != 0) expected += "\r\n";
    auto it = file_of.find(d.envelope_to);
    REQUIRE(it != file_of.end());
    if (read_file(dir / "new" / it->second) != expected) ++mismatches;
  }
  CHECK(mismatches == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("smtp pool to own sink with faults: outcomes match what the sink did", "[smtp][pool]") {
  boost::asio::io_context io;
  testpeers::smtp_sink_options so;
  so.transient_share = 0.2;
  so.drop_after_dot_share = 0.03;
  so.reject_rcpt_containing = "reject";
  so.seed = 42;
  testpeers::smtp_sink server(io.get_executor(), so);

  test::counting_listener listener;
  smtp::relay_config cfg;
  cfg.port = server.port();
  cfg.connections = 4;
  cfg.reconnect_backoff_min = milliseconds(5);
  cfg.reconnect_backoff_max = milliseconds(50);
  smtp::pool pool(io.get_executor(), cfg, listener);

  auto ds = test::make_deliveries(1000, "reject", 10);
  REQUIRE(test::push_all_and_close(io, pool, ds, milliseconds(20000), [&] { server.stop(); }));

  auto st = server.statistics();
  INFO("sink: messages " << st.messages << " rcpt_transient " << st.rcpt_transient << " rejected "
                         << st.rcpt_rejected << " dot_transient " << st.dot_transient << " dropped "
                         << st.dropped_after_dot);
  CHECK(listener.delivered == ds.size());
  CHECK(listener.count(outcome::accepted) == st.messages);
  CHECK(listener.count(outcome::permanent) == st.rcpt_rejected);
  CHECK(st.rcpt_rejected <= 100);  // some rode along with a dropped dot: unsent, not retried
  CHECK(st.rcpt_rejected >= 80);
  CHECK(listener.count(outcome::ambiguous) == st.dropped_after_dot);
  // Answers to one message are charged to it; a dropped connection hands back the envelope that
  // rode along with the dot unsent (the path failed, not the message).
  CHECK(listener.count(outcome::transient) == st.rcpt_transient + st.dot_transient);
  CHECK(listener.count(outcome::unsent) <= st.dropped_after_dot);
  CHECK(st.dropped_after_dot > 0);
  CHECK(st.dot_transient > 0);
  CHECK(st.rcpt_transient > 0);
  const auto& ps = pool.statistics();
  CHECK(ps.accepted + ps.transient + ps.permanent + ps.ambiguous + ps.unsent == ds.size());
  for (auto& d : ds) {
    if (d.result == outcome::permanent) CHECK(d.reply.rfind("550 5.1.1", 0) == 0);
  }
}

TEST_CASE("smtp pool: a relay that never greets times out, deliveries come back unsent", "[smtp][pool]") {
  boost::asio::io_context io;
  using boost::asio::ip::tcp;
  tcp::acceptor acceptor(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  std::vector<tcp::socket> held;  // accepted, never answered
  std::function<void()> accept_next = [&] {
    acceptor.async_accept([&](boost::system::error_code ec, tcp::socket s) {
      if (ec) return;
      held.push_back(std::move(s));
      accept_next();
    });
  };
  accept_next();

  test::counting_listener listener;
  smtp::relay_config cfg;
  cfg.port = acceptor.local_endpoint().port();
  cfg.connections = 2;
  cfg.command_timeout = milliseconds(200);
  cfg.reconnect_backoff_min = milliseconds(1000);
  smtp::pool pool(io.get_executor(), cfg, listener);

  auto ds = test::make_deliveries(20);
  auto start = std::chrono::steady_clock::now();
  REQUIRE(test::push_all_and_close(io, pool, ds, milliseconds(5000), [&] { acceptor.close(); }));
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(listener.count(outcome::unsent) == ds.size());
  CHECK(pool.statistics().connects >= 1);
  CHECK(pool.statistics().connect_failures >= 1);
  CHECK(elapsed < std::chrono::seconds(2));
  for (auto& d : ds) CHECK(d.reply.find("local:") == 0);
}

TEST_CASE("smtp sink runner: serves until SIGTERM and reports its counts", "[smtp][sink]") {
  testpeers::smtp_sink_options so;
  so.port = support::free_loopback_port();
  int code = -1;
  std::thread runner([&] { code = testpeers::run_smtp_sink_until_signal(so); });
  REQUIRE(support::wait_for_port(so.port, milliseconds(5000)));

  boost::asio::io_context io;
  test::counting_listener listener;
  smtp::relay_config cfg;
  cfg.port = so.port;
  cfg.connections = 2;
  smtp::pool pool(io.get_executor(), cfg, listener);
  auto ds = test::make_deliveries(50);
  REQUIRE(test::push_all_and_close(io, pool, ds, milliseconds(5000), [] {}));
  CHECK(listener.count(outcome::accepted) == 50);

  ::kill(::getpid(), SIGTERM);  // caught by the runner's signal_set
  runner.join();
  CHECK(code == 0);
}

TEST_CASE("smtp sink: a port already in use is a start-up error", "[smtp][sink]") {
  boost::asio::io_context io;
  testpeers::smtp_sink first(io.get_executor(), {});
  testpeers::smtp_sink_options so;
  so.port = first.port();
  CHECK_THROWS_AS(testpeers::smtp_sink(io.get_executor(), so), std::system_error);
}

TEST_CASE("smtp pool: no reply to the final dot within data_timeout is ambiguous", "[smtp][pool]") {
  boost::asio::io_context io;
  testpeers::smtp_sink_options so;
  so.reply_delay = milliseconds(300);
  testpeers::smtp_sink server(io.get_executor(), so);

  test::counting_listener listener;
  smtp::relay_config cfg;
  cfg.port = server.port();
  cfg.connections = 2;
  cfg.command_timeout = milliseconds(2000);
  cfg.data_timeout = milliseconds(150);  // shorter than the command timeout: the watchdog re-arms
  smtp::pool pool(io.get_executor(), cfg, listener);

  auto ds = test::make_deliveries(2);
  auto start = std::chrono::steady_clock::now();
  REQUIRE(test::push_all_and_close(io, pool, ds, milliseconds(5000), [&] { server.stop(); }));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
  CHECK(listener.count(outcome::ambiguous) == 2);
  for (auto& d : ds) CHECK(d.reply.find("timeout after the final dot") != std::string::npos);
  CHECK(pool.statistics().ambiguous == 2);
}
