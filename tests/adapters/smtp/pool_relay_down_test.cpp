// The pool when nothing listens on the relay's port.
#include <catch2/catch.hpp>

#include <thread>

#include "harness.hpp"
#include "support/process.hpp"

using namespace budstikke;
using namespace budstikke::adapters;
using std::chrono::milliseconds;

TEST_CASE("smtp pool relay down: deliveries come back unsent and the pool does not spin", "[smtp][pool]") {
  boost::asio::io_context io;
  test::counting_listener listener;
  smtp::relay_config cfg;
  cfg.port = support::free_loopback_port();  // nothing listens there
  cfg.connections = 4;
  cfg.reconnect_backoff_min = milliseconds(500);
  cfg.reconnect_backoff_max = milliseconds(2000);
  smtp::pool pool(io.get_executor(), cfg, listener);

  auto first = test::make_deliveries(100);
  auto second = test::make_deliveries(100);
  for (auto& d : first) pool.push(d);
  CHECK(listener.delivered == 0);  // never from inside push

  // Let the first batch fail, then push the second while the relay is known to be down.
  test::run_for(io, milliseconds(100));
  CHECK(listener.delivered == first.size());
  CHECK(listener.count(outcome::unsent) == first.size());
  auto failures_after_first = pool.statistics().connect_failures;
  CHECK(failures_after_first >= 1);
  CHECK(failures_after_first <= cfg.connections);

  for (auto& d : second) pool.push(d);
  CHECK(listener.delivered == first.size());
  test::run_for(io, milliseconds(100));
  CHECK(listener.delivered == first.size() + second.size());
  CHECK(listener.count(outcome::unsent) == first.size() + second.size());
  CHECK(pool.statistics().connect_failures == failures_after_first);  // no new attempts: no spinning
  CHECK(pool.statistics().connects == 0);
  for (auto& d : second) CHECK(d.reply.rfind("local: ", 0) == 0);

  pool.close();
  bool closed = false;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        co_await pool.async_wait_closed();
        closed = true;
      },
      boost::asio::detached);
  auto start = std::chrono::steady_clock::now();
  test::run_for(io, milliseconds(3000));
  CHECK(closed);
  CHECK(std::chrono::steady_clock::now() - start < milliseconds(500));  // close cuts the backoff short
}

TEST_CASE("smtp pool relay down: after the backoff it tries again", "[smtp][pool]") {
  boost::asio::io_context io;
  test::counting_listener listener;
  smtp::relay_config cfg;
  cfg.port = support::free_loopback_port();
  cfg.connections = 1;
  cfg.reconnect_backoff_min = milliseconds(50);
  cfg.reconnect_backoff_max = milliseconds(50);
  smtp::pool pool(io.get_executor(), cfg, listener);
  auto ds = test::make_deliveries(2);
  pool.push(ds[0]);
  test::run_for(io, milliseconds(30));
  CHECK(pool.statistics().connect_failures == 1);
  std::this_thread::sleep_for(milliseconds(120));  // past the backoff
  pool.push(ds[1]);
  test::run_for(io, milliseconds(30));
  CHECK(pool.statistics().connect_failures == 2);
  CHECK(listener.count(outcome::unsent) == 2);
  pool.close();
  bool closed = false;
  boost::asio::co_spawn(
      io, [&]() -> boost::asio::awaitable<void> { co_await pool.async_wait_closed(); closed = true; },
      boost::asio::detached);
  test::run_for(io, milliseconds(1000));
  CHECK(closed);
}
