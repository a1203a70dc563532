#include "testpeers/http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace budstikke::testpeers {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using support::host_port;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

std::optional<http_response> http_get(const host_port& server, std::string_view target,
                                      std::chrono::milliseconds timeout, std::string* error) {
  return http_request(server, "GET", target, {}, timeout, error);
}

std::optional<http_response> http_request(const host_port& server, std::string_view method, std::string_view target,
                                          std::string_view body, std::chrono::milliseconds timeout,
                                          std::string* error) {
  asio::io_context ioc(1);
  std::optional<http_response> result;
  std::string problem;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        beast::tcp_stream stream(ioc);
        stream.expires_after(timeout);
        tcp::resolver resolver(ioc);
        auto [rec, endpoints] = co_await resolver.async_resolve(server.host, std::to_string(server.port), use_tuple);
        if (rec) {
          problem = rec.message();
          co_return;
        }
        auto [cec, ep] = co_await stream.async_connect(endpoints, use_tuple);
        if (cec) {
          problem = cec.message();
          co_return;
        }
        http::request<http::string_body> req(http::string_to_verb(method), std::string(target), 11);
        req.set(http::field::host, server.host);
        req.keep_alive(false);
        if (!body.empty()) {
          req.set(http::field::content_type, "application/x-www-form-urlencoded");
          req.body() = std::string(body);
        }
        req.prepare_payload();
        auto [wec, written] = co_await http::async_write(stream, req, use_tuple);
        if (wec) {
          problem = wec.message();
          co_return;
        }
        beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        auto [ec, read] = co_await http::async_read(stream, buffer, parser, use_tuple);
        if (ec) {
          problem = ec.message();
          co_return;
        }
        auto& res = parser.get();
        result = http_response{static_cast<int>(res.result_int()),
                               std::string(res[http::field::content_type]), std::move(res.body())};
      },
      [&](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          problem = ex.what();
        }
      });
  ioc.run();
  if (!result && error) *error = problem;
  return result;
}

}  // namespace budstikke::testpeers
