// Several relays behind make_smtp_messenger: the spread by weight, and failover when a relay
// cannot be reached, fails TLS or says 421 — each delivery still reported exactly once.
#include <catch2/catch.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "testpeers/smtp_sink.hpp"
#include "testpeers/throwaway_cert.hpp"
#include "harness.hpp"
#include "support/process.hpp"

using namespace budstikke;
using namespace budstikke::adapters;
using std::chrono::milliseconds;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

smtp::relay_config relay_on(std::uint16_t port, unsigned weight) {
  smtp::relay_config r;
  r.port = port;
  r.weight = weight;
  r.connections = 2;
  r.reconnect_backoff_min = milliseconds(500);  // a drained relay stays drained during the test
  r.reconnect_backoff_max = milliseconds(2000);
  r.command_timeout = milliseconds(2000);
  r.log = [](smtp::log_level, std::string_view, std::string_view, std::string_view) {};
  return r;
}

// A relay that greets, answers EHLO (no PIPELINING) and then says 421 to whatever comes next.
struct relay_421 {
  explicit relay_421(asio::io_context& io) : acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, s] = co_await acceptor.async_accept(use_tuple);
      if (ec) co_return;
      asio::co_spawn(acceptor.get_executor(), serve(std::move(s)), asio::detached);
    }
  }
  asio::awaitable<void> serve(tcp::socket s) {
    co_await asio::async_write(s, asio::buffer(std::string_view("220 fake ESMTP\r\n")), use_tuple);
    char buf[2048];
    for (;;) {
      auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_tuple);
      if (ec) co_return;
      std::string_view cmd(buf, n);
      if (cmd.rfind("EHLO", 0) == 0) {
        co_await asio::async_write(s, asio::buffer(std::string_view("250 fake\r\n")), use_tuple);
        continue;
      }
      if (cmd.rfind("MAIL", 0) == 0) ++mails;
      co_await asio::async_write(s, asio::buffer(std::string_view("421 4.3.2 going away\r\n")), use_tuple);
      co_return;
    }
  }
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }
  tcp::acceptor acceptor;
  std::size_t mails = 0;
};

}  // namespace

TEST_CASE("smtp relays: deliveries spread by weight", "[smtp][relays]") {
  asio::io_context io;
  testpeers::smtp_sink a(io.get_executor(), {}), b(io.get_executor(), {});
  smtp::smtp_config cfg;
  cfg.relays = {relay_on(a.port(), 3), relay_on(b.port(), 1)};
  test::counting_listener listener;
  auto m = smtp::make_smtp_messenger(io.get_executor(), cfg, listener);
  auto ds = test::make_deliveries(400);
  REQUIRE(test::push_all_and_close(io, *m, ds, milliseconds(15000), [&] {
    a.stop();
    b.stop();
  }));
  CHECK(listener.count(outcome::accepted) == 400);
  CHECK(listener.each_once(ds));
  CHECK(a.statistics().messages == 300);
  CHECK(b.statistics().messages == 100);
}

TEST_CASE("smtp relays: an unreachable relay is drained, its deliveries go elsewhere", "[smtp][relays]") {
  asio::io_context io;
  testpeers::smtp_sink b(io.get_executor(), {});
  smtp::smtp_config cfg;
  cfg.relays = {relay_on(support::free_loopback_port(), 1), relay_on(b.port(), 1)};
  test::counting_listener listener;
  auto m = smtp::make_smtp_messenger(io.get_executor(), cfg, listener);
  auto ds = test::make_deliveries(200);
  REQUIRE(test::push_all_and_close(io, *m, ds, milliseconds(15000), [&] { b.stop(); }));
  CHECK(listener.count(outcome::accepted) == 200);
  CHECK(listener.each_once(ds));
  CHECK(b.statistics().messages == 200);
}

TEST_CASE("smtp relays: a relay that fails certificate verification gets no MAIL, the other sends", "[smtp][relays][tls]") {
  asio::io_context io;
  auto dir = test::temp_dir("relays-tls");
  testpeers::write_pem_files(testpeers::make_test_certificate({}, nullptr), dir / "s.crt", dir / "s.key");
  testpeers::smtp_sink_options untrusted;
  untrusted.tls_cert_file = (dir / "s.crt").string();
  untrusted.tls_key_file = (dir / "s.key").string();
  testpeers::smtp_sink a(io.get_executor(), untrusted), b(io.get_executor(), {});
  smtp::smtp_config cfg;
  auto ra = relay_on(a.port(), 5);
  ra.tls = smtp::tls_mode::starttls;
  ra.tls_server_name = "localhost";
  cfg.relays = {ra, relay_on(b.port(), 1)};
  test::counting_listener listener;
  auto m = smtp::make_smtp_messenger(io.get_executor(), cfg, listener);
  auto ds = test::make_deliveries(100);
  REQUIRE(test::push_all_and_close(io, *m, ds, milliseconds(15000), [&] {
    a.stop();
    b.stop();
  }));
  CHECK(listener.count(outcome::accepted) == 100);
  CHECK(listener.each_once(ds));
  CHECK(a.statistics().mail_commands == 0);
  CHECK(a.statistics().tls_failures >= 1);
  CHECK(b.statistics().messages == 100);
  std::filesystem::remove_all(dir);
}

TEST_CASE("smtp relays: 421 closes and the delivery is retried elsewhere", "[smtp][relays]") {
  asio::io_context io;
  relay_421 a(io);
  testpeers::smtp_sink b(io.get_executor(), {});
  smtp::smtp_config cfg;
  cfg.relays = {relay_on(a.port(), 1), relay_on(b.port(), 1)};
  test::counting_listener listener;
  auto m = smtp::make_smtp_messenger(io.get_executor(), cfg, listener);
  auto ds = test::make_deliveries(100);
  REQUIRE(test::push_all_and_close(io, *m, ds, milliseconds(15000), [&] {
    a.acceptor.close();
    b.stop();
  }));
  CHECK(a.mails >= 1);
  CHECK(listener.count(outcome::accepted) == 100);
  CHECK(listener.each_once(ds));
  CHECK(b.statistics().messages == 100);
}

TEST_CASE("smtp relays: every relay down, each delivery comes back once, unsent", "[smtp][relays]") {
  asio::io_context io;
  smtp::smtp_config cfg;
  cfg.relays = {relay_on(support::free_loopback_port(), 1), relay_on(support::free_loopback_port(), 2),
                relay_on(support::free_loopback_port(), 1)};
  test::counting_listener listener;
  auto m = smtp::make_smtp_messenger(io.get_executor(), cfg, listener);
  auto ds = test::make_deliveries(50);
  REQUIRE(test::push_all_and_close(io, *m, ds, milliseconds(10000), [] {}));
  CHECK(listener.count(outcome::unsent) == 50);
  CHECK(listener.each_once(ds));
  for (const auto& d : ds) CHECK(d.reply.rfind("local:", 0) == 0);
}
