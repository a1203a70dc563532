#include "admin/server.hpp"

#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>

#include "admin/http.hpp"
#include "config/config.hpp"
#include "engine/metrics.hpp"
#include "engine/unsubscribe.hpp"
#include "support/log.hpp"

namespace budstikke::admin {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_requests_per_connection = 100;
constexpr std::chrono::seconds request_timeout{10};  // for the body and the answer, after the head
// Beyond max_connections, a few more connections are read for a probe (and only a probe):
// a liveness probe still answers while a flood holds every ordinary slot.
constexpr std::size_t reserved_probe_slots = 8;
constexpr std::chrono::milliseconds reserved_head_timeout{500};
// Connections being told 503 at once; beyond, a connection is closed without a word.
constexpr std::size_t max_refusing = 64;
constexpr auto refusal_timeout = 1s;
// Unsubscribes share this many Redis connections; at most max_unsubscribes_waiting wait for one.
constexpr std::size_t redis_connections = 2;
constexpr std::size_t max_unsubscribes_waiting = 64;

using redis_pool = asio::experimental::channel<void(boost::system::error_code, std::unique_ptr<queue::connection>)>;

void answer_withdrawal(response& res, const engine::withdrawal_result& result) {
  using engine::withdrawal_status;
  switch (result.status) {
    case withdrawal_status::withdrawn:
    case withdrawal_status::already:
      // The same answer both times: the member is unsubscribed, whichever request did it.
      res.result(http::status::ok);
      res.body() = "unsubscribed\n";
      break;
    case withdrawal_status::invalid_token:
      res.result(http::status::bad_request);
      res.body() = "this unsubscribe link is not valid\n";
      break;
    case withdrawal_status::unknown_campaign:
      res.result(http::status::not_found);
      res.body() = "the campaign of this link is no longer known\n";
      break;
    case withdrawal_status::no_secret:
    case withdrawal_status::redis_error:
      log::warn("unsubscribe not applied", {{"error", result.detail}});
      res.result(http::status::service_unavailable);
      res.set(http::field::retry_after, "30");
      res.body() = "not applied; try again later\n";
      break;
  }
}

// After an answer the server closes on: stop sending, then read what the client still sends
// (briefly, boundedly) so the close does not reset the connection before the answer is read.
asio::awaitable<void> close_gracefully(beast::tcp_stream& stream) {
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.expires_after(refusal_timeout);
  char sink[4096];
  for (std::size_t drained = 0; drained < 64 * 1024;) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), use_tuple);
    if (ec) break;
    drained += n;
  }
  stream.socket().close(ignored);
}

}  // namespace

std::vector<listener> listeners_of(const engine_config& e) {
  std::vector<listener> out;
  if (e.admin_listen.empty()) return out;
  unsigned admin = serves_all;
  if (!e.unsubscribe_listen.empty()) admin &= ~unsigned(serves_unsubscribe);
  out.push_back({*support::parse_host_port(e.admin_listen), admin});
  if (!e.probe_listen.empty()) out.push_back({*support::parse_host_port(e.probe_listen), serves_probes});
  if (!e.unsubscribe_listen.empty())
    out.push_back({*support::parse_host_port(e.unsubscribe_listen), serves_unsubscribe});
  return out;
}

server_limits limits_of(const engine_config& e) {
  return {.max_connections = e.admin_max_connections,
          .head_timeout = e.admin_head_timeout,
          .unsubscribe_per_source = static_cast<unsigned>(e.unsubscribe_rate_per_source)};
}

struct server::impl {
  struct listening {
    listening(asio::io_context& ioc, unsigned s) : acceptor(ioc), serves(s) {}
    tcp::acceptor acceptor;
    unsigned serves;
    std::size_t sessions = 0, reserved = 0;  // only touched on the server's thread
  };

  impl(std::vector<listener> wanted, engine::metrics::registry& r, const config* c, server_limits l)
      : reg(r), cfg(c), limits(l), limiter(l.unsubscribe_per_source), pool(ioc, redis_connections) {
    for (const auto& w : wanted) {
      auto& lis = *listeners.emplace_back(std::make_unique<listening>(ioc, w.serves));
      try {
        tcp::resolver resolver(ioc);
        auto endpoints = resolver.resolve(w.at.host, std::to_string(w.at.port), tcp::resolver::passive);
        tcp::endpoint ep = endpoints.begin()->endpoint();
        lis.acceptor.open(ep.protocol());
        lis.acceptor.set_option(tcp::acceptor::reuse_address(true));
        lis.acceptor.bind(ep);
        lis.acceptor.listen();
      } catch (const boost::system::system_error& e) {
        throw std::system_error(e.code(), fmt::format("admin listener {}:{}", w.at.host, w.at.port));
      }
    }
    if (cfg)
      for (std::size_t i = 0; i < redis_connections; ++i)
        pool.try_send(boost::system::error_code{}, std::make_unique<queue::connection>(ioc.get_executor(), cfg->redis));
    for (auto& lis : listeners) asio::co_spawn(ioc, accept_loop(*lis), [](std::exception_ptr) {});
    // [this] is safe in the thread and every handler of ioc: the destructor joins the thread
    // before any member goes, and handlers still queued then are destroyed with ioc, never run.
    thread = std::thread([this] { ioc.run(); });
  }

  ~impl() {
    asio::post(ioc, [this] {  // safe: joined below
      boost::system::error_code ignored;
      for (auto& lis : listeners) lis->acceptor.close(ignored);
      pool.close();
      ioc.stop();
    });
    thread.join();
  }

  asio::awaitable<void> accept_loop(listening& lis) {
    asio::steady_timer pause(ioc);
    for (;;) {
      auto [ec, socket] = co_await lis.acceptor.async_accept(use_tuple);
      if (ec == asio::error::operation_aborted || !lis.acceptor.is_open()) co_return;
      if (ec) {  // out of file descriptors, most likely: do not spin on it
        pause.expires_after(50ms);
        co_await pause.async_wait(use_tuple);
        continue;
      }
      if (lis.sessions < limits.max_connections) {
        ++lis.sessions;
        asio::co_spawn(ioc, session(std::move(socket), lis, false), [&lis](std::exception_ptr) { --lis.sessions; });
      } else if ((lis.serves & serves_probes) && lis.reserved < reserved_probe_slots) {
        ++lis.reserved;
        asio::co_spawn(ioc, session(std::move(socket), lis, true), [&lis](std::exception_ptr) { --lis.reserved; });
      } else {
        warn_at_limit();
        if (refusing < max_refusing) {
          ++refusing;
          asio::co_spawn(ioc, refuse(std::move(socket)), [this](std::exception_ptr) { --refusing; });  // safe: see impl()
        }  // else the socket closes here
      }
    }
  }

  // Once a minute at most: a flood must not flood the log too.
  void warn_at_limit() {
    auto now = std::chrono::steady_clock::now();
    if (now - last_limit_warning < 60s) return;
    last_limit_warning = now;
    log::warn("admin port at its connection limit: refusing connections with 503",
              {{"max_connections", limits.max_connections}});
  }

  asio::awaitable<void> refuse(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    stream.expires_after(refusal_timeout);
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(busy_response()), use_tuple);
    if (!ec) co_await close_gracefully(stream);
  }

  // `reserved`: a connection beyond the limit, read only for a probe.
  asio::awaitable<void> session(tcp::socket socket, const listening& lis, bool reserved) {
    beast::tcp_stream stream(std::move(socket));
    boost::system::error_code peer_ec;
    const auto peer = stream.socket().remote_endpoint(peer_ec).address();
    beast::flat_buffer buffer(max_header_bytes + max_body_bytes);
    const auto head_timeout = reserved ? std::min(limits.head_timeout, reserved_head_timeout) : limits.head_timeout;
    const bool unsubscribe_enabled = cfg && cfg->email.has_unsubscribe_secret();
    for (std::size_t n = 0; n < max_requests_per_connection; ++n) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(max_header_bytes);
      parser.body_limit(max_body_bytes);
      // The head within the short timeout (a slow or idle client lets its slot go); the body and
      // the answer within the longer one.
      stream.expires_after(head_timeout);
      auto [ec, read] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
      if (!ec && !parser.is_done()) {
        stream.expires_after(request_timeout);
        std::tie(ec, read) = co_await http::async_read(stream, buffer, parser, use_tuple);
      }
      if (ec) {
        if (auto res = parse_failure_response(ec)) {
          stream.expires_after(refusal_timeout);
          auto [wec, written] = co_await http::async_write(stream, *res, use_tuple);
          if (!wec) co_await close_gracefully(stream);
        }
        co_return;
      }
      const auto& req = parser.get();
      auto d = route(req, reserved ? unsigned(serves_probes) : lis.serves, unsubscribe_enabled);
      if (reserved && d.what == action::respond && d.res.result() == http::status::not_found) {
        stream.expires_after(refusal_timeout);
        auto [wec, written] = co_await asio::async_write(stream, asio::buffer(busy_response()), use_tuple);
        if (!wec) co_await close_gracefully(stream);
        co_return;
      }
      switch (d.what) {
        case action::respond: break;
        case action::metrics: d.res.body() = reg.render_prometheus(); break;
        case action::readiness:
          if (reg.ready()) {
            d.res.body() = "ready\n";
          } else {
            d.res.result(http::status::service_unavailable);
            d.res.body() = "not ready: a shard has not reached Redis or is not pulling\n";
          }
          break;
        case action::unsubscribe: co_await unsubscribe(peer, d); break;
      }
      if (reserved) d.res.keep_alive(false);
      finish(d.res);
      stream.expires_after(request_timeout);
      auto [wec, written] = co_await http::async_write(stream, d.res, use_tuple);
      if (wec || !d.res.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  asio::awaitable<void> unsubscribe(const asio::ip::address& peer, decision& d) {
    if (!limiter.allow(peer, std::chrono::steady_clock::now())) {
      too_many_requests(d.res, 1s);
      co_return;
    }
    if (unsubscribes_waiting >= max_unsubscribes_waiting) {
      d.res.result(http::status::service_unavailable);
      d.res.set(http::field::retry_after, "5");
      d.res.body() = "busy; try again later\n";
      co_return;
    }
    ++unsubscribes_waiting;
    auto [ec, conn] = co_await pool.async_receive(use_tuple);
    --unsubscribes_waiting;
    if (ec || !conn) {  // shutting down
      d.res.result(http::status::service_unavailable);
      d.res.body() = "shutting down; try again later\n";
      co_return;
    }
    auto result = co_await engine::apply_unsubscribe_token(*conn, *cfg, d.token, "one-click unsubscribe");
    pool.try_send(boost::system::error_code{}, std::move(conn));
    answer_withdrawal(d.res, result);
  }

  // ioc first: every I/O object below is destroyed before it.
  asio::io_context ioc{1};
  engine::metrics::registry& reg;
  const config* cfg;
  server_limits limits;
  source_limiter limiter;
  redis_pool pool;  // the idle Redis connections of POST /unsubscribe
  std::size_t unsubscribes_waiting = 0, refusing = 0;
  std::chrono::steady_clock::time_point last_limit_warning{};
  std::vector<std::unique_ptr<listening>> listeners;
  std::thread thread;
};

server::server(std::vector<listener> listeners, engine::metrics::registry& reg, const config* cfg, server_limits limits)
    : impl_(std::make_unique<impl>(std::move(listeners), reg, cfg, limits)) {}
server::~server() = default;
std::uint16_t server::port(std::size_t i) const { return impl_->listeners.at(i)->acceptor.local_endpoint().port(); }

}  // namespace budstikke::admin
