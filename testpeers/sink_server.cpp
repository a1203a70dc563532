#include "testpeers/sink_server.hpp"

#include <system_error>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace budstikke::testpeers {
namespace asio = boost::asio;
using asio::ip::tcp;

sink_server::sink_server(asio::any_io_executor ex) : ex_(std::move(ex)), acceptor_(ex_) {}

void sink_server::listen(const std::string& host, std::uint16_t port) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  loopback_ = !ec && address.is_loopback();
  tcp::endpoint ep(address, port);
  if (!ec) acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) port_ = acceptor_.local_endpoint(ec).port();
  if (ec) throw std::system_error(std::error_code(ec), "cannot listen on " + host + ":" + std::to_string(port));
}

void sink_server::start() {
  asio::co_spawn(ex_, accept_loop(shared_from_this()), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
}

void sink_server::stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (tcp::socket* s : sockets_) s->close(ignored);
}

asio::awaitable<void> sink_server::accept_loop(std::shared_ptr<sink_server> self) {
  while (!self->stopped_) {
    auto [ec, socket] = co_await self->acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (self->stopped_) break;
      continue;  // e.g. EMFILE: keep serving the connections we have
    }
    self->connections_.fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(self->ex_, serve(self, std::move(socket)), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
  }
}

asio::awaitable<void> sink_server::serve(std::shared_ptr<sink_server> self, tcp::socket socket) {
  using namespace asio::experimental::awaitable_operators;
  if (self->stopped_) co_return;
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  self->sockets_.insert(&socket);
  asio::steady_timer watchdog_timer(self->ex_);
  adapters::io_deadline deadline;
  co_await (self->converse(socket, deadline) || deadline.watch(watchdog_timer, [&socket] {
              boost::system::error_code e;
              socket.close(e);
            }));
  self->sockets_.erase(&socket);
  socket.close(ignored);
}

}  // namespace budstikke::testpeers
