#include "admin/server.hpp"

#include <charconv>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>

#include "config/config.hpp"
#include "support/form_urlencoded.hpp"
#include "support/log.hpp"
#include "engine/metrics.hpp"
#include "engine/unsubscribe.hpp"

namespace budstikke::admin {
using namespace engine;  // metrics, the unsubscribe it applies
}

namespace budstikke::admin {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_sessions = 32;
constexpr std::size_t max_header_bytes = 8 * 1024;
constexpr std::size_t max_body_bytes = 4 * 1024;
constexpr std::size_t max_requests_per_connection = 100;
constexpr std::chrono::seconds request_timeout{10};

using response = http::response<http::string_body>;

using request = http::request<http::string_body>;

response start_response(const request& req) {
  response res;
  res.version(req.version());
  res.keep_alive(req.keep_alive());
  res.set(http::field::server, "budstikke");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  return res;
}

std::string_view path_of(const request& req) {
  auto target = std::string_view(req.target().data(), req.target().size());
  return target.substr(0, target.find('?'));
}

// The value of `name` in an application/x-www-form-urlencoded string (a query or a form body).
// A malformed %-escape stays as it is, as browsers read forms (the token then does not verify).
std::optional<std::string> form_value(std::string_view form, std::string_view name) {
  while (!form.empty()) {
    auto amp = form.find('&');
    auto pair = form.substr(0, amp);
    form = amp == std::string_view::npos ? std::string_view{} : form.substr(amp + 1);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) != name || eq == std::string_view::npos) continue;
    std::string value;
    support::decode_form_component(pair.substr(eq + 1), value, support::malformed_escape::keep);
    return value;
  }
  return std::nullopt;
}

// The token of POST /unsubscribe: `t` (or `token`) in the query, as the List-Unsubscribe URL
// carries it, or in a form body.
std::optional<std::string> unsubscribe_token(const request& req) {
  auto target = std::string_view(req.target().data(), req.target().size());
  auto q = target.find('?');
  auto query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  for (auto name : {"t", "token"}) {
    if (auto v = form_value(query, name)) return v;
    if (auto v = form_value(req.body(), name)) return v;
  }
  return std::nullopt;
}

asio::awaitable<response> unsubscribe(const request& req, const config& cfg) {
  response res = start_response(req);
  auto token = unsubscribe_token(req);
  if (!token) {
    res.result(http::status::bad_request);
    res.body() = "no token: POST /unsubscribe?t=TOKEN\n";
    co_return res;
  }
  queue::connection conn(co_await asio::this_coro::executor, cfg.redis);
  auto result = co_await apply_unsubscribe_token(conn, cfg, *token, "one-click unsubscribe");
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
  co_return res;
}

response answer(const request& req, metrics::registry& reg) {
  response res = start_response(req);
  auto target = path_of(req);
  const bool known = target == "/metrics" || target == "/healthz" || target == "/readyz";
  if (!known) {
    res.result(http::status::not_found);
    res.body() = "not found\n";
  } else if (req.method() != http::verb::get) {
    res.result(http::status::method_not_allowed);
    res.set(http::field::allow, "GET");
    res.body() = "only GET\n";
  } else if (target == "/metrics") {
    res.result(http::status::ok);
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = reg.render_prometheus();
  } else if (target == "/healthz") {
    res.result(http::status::ok);
    res.body() = "ok\n";
  } else if (reg.ready()) {
    res.result(http::status::ok);
    res.body() = "ready\n";
  } else {
    res.result(http::status::service_unavailable);
    res.body() = "not ready: a shard has not reached Redis or is not pulling\n";
  }
  res.prepare_payload();
  return res;
}

}  // namespace

struct server::impl {
  impl(const support::host_port& listen, metrics::registry& r, const config* c) : reg(r), cfg(c), acceptor(ioc) {
    try {
      tcp::resolver resolver(ioc);
      auto endpoints = resolver.resolve(listen.host, std::to_string(listen.port), tcp::resolver::passive);
      tcp::endpoint ep = endpoints.begin()->endpoint();
      acceptor.open(ep.protocol());
      acceptor.set_option(tcp::acceptor::reuse_address(true));
      acceptor.bind(ep);
      acceptor.listen();
    } catch (const boost::system::system_error& e) {
      throw std::system_error(e.code(), fmt::format("admin_listen {}:{}", listen.host, listen.port));
    }
    asio::co_spawn(ioc, accept_loop(), [](std::exception_ptr) {});
    // [this] is safe in the thread and every handler of ioc: the destructor joins the thread
    // before any member goes, and handlers still queued then are destroyed with ioc, never run.
    thread = std::thread([this] { ioc.run(); });
  }

  ~impl() {
    asio::post(ioc, [this] {  // safe: joined below
      boost::system::error_code ignored;
      acceptor.close(ignored);
      ioc.stop();
    });
    thread.join();
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) continue;
      if (sessions >= max_sessions) continue;  // the socket closes here
      ++sessions;
      asio::co_spawn(ioc, session(std::move(socket)), [this](std::exception_ptr) { --sessions; });  // safe: see impl()
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer(max_header_bytes);
    for (std::size_t n = 0; n < max_requests_per_connection; ++n) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(max_header_bytes);
      parser.body_limit(max_body_bytes);
      stream.expires_after(request_timeout);
      auto [ec, read] = co_await http::async_read(stream, buffer, parser, use_tuple);
      if (ec) break;  // a body over the limit, a timeout, a close
      const auto& req = parser.get();
      response res;
      if (path_of(req) == "/unsubscribe") {
        if (req.method() != http::verb::post) {
          res = start_response(req);
          res.result(http::status::method_not_allowed);
          res.set(http::field::allow, "POST");
          res.body() = "POST /unsubscribe?t=TOKEN unsubscribes; GET never changes anything\n";
        } else if (!cfg || cfg->email.unsubscribe_secret.empty()) {
          res = start_response(req);
          res.result(http::status::not_found);
          res.body() = "unsubscribe is not enabled: no unsubscribe secret configured\n";
        } else {
          res = co_await unsubscribe(req, *cfg);
        }
        res.prepare_payload();
      } else {
        res = answer(req, reg);
      }
      stream.expires_after(request_timeout);
      auto [wec, written] = co_await http::async_write(stream, res, use_tuple);
      if (wec || !res.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  metrics::registry& reg;
  const config* cfg;
  asio::io_context ioc{1};
  tcp::acceptor acceptor;
  std::size_t sessions = 0;  // only touched on the server's thread
  std::thread thread;
};

server::server(const support::host_port& listen, engine::metrics::registry& reg, const config* cfg)
    : impl_(std::make_unique<impl>(listen, reg, cfg)) {}
server::~server() = default;
std::uint16_t server::port() const { return impl_->acceptor.local_endpoint().port(); }

}  // namespace budstikke::admin
