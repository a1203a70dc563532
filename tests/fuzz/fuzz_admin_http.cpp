// The admin port's request handling fed with what a client may send, in chunks as a socket
// delivers it: Beast's parser with the server's limits, then the answer of admin/http.hpp. Never
// a crash; every answer is well formed, its length is its body's, and nothing a client sends
// ends up in a header line. The first byte sets the chunk size, the listener's paths and
// whether unsubscribe is enabled.
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/write.hpp>

#include "admin/http.hpp"

namespace http = boost::beast::http;
using namespace budstikke::admin;

namespace {

void check(const response& res) {
  auto status = res.result_int();
  if (status < 200 || status > 599) __builtin_trap();
  std::ostringstream out;
  out << res;
  auto wire = out.str();
  auto end = wire.find("\r\n\r\n");
  if (end == std::string::npos) __builtin_trap();
  // The head ends where the body starts, and the body is what the answer says it is.
  if (wire.substr(end + 4) != res.body()) __builtin_trap();
  auto length = res[http::field::content_length];
  if (length != std::to_string(res.body().size())) __builtin_trap();
  for (char c : wire.substr(0, end))
    if (c == '\0') __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t chunk = 1 + (data[0] >> 4) * 37;
  const unsigned served = 1 + data[0] % 7;
  const bool enabled = data[0] & 8;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  http::request_parser<http::string_body> parser;
  parser.header_limit(max_header_bytes);
  parser.body_limit(max_body_bytes);
  boost::system::error_code ec;
  std::string pending;  // what the parser has not taken yet, as the server's buffer holds it
  while (!parser.is_done() && !ec && !in.empty()) {
    pending.append(in.substr(0, chunk));
    in.remove_prefix(std::min(chunk, in.size()));
    for (;;) {
      auto used = parser.put(boost::asio::buffer(pending), ec);
      if (used > pending.size()) __builtin_trap();
      pending.erase(0, used);
      if (ec == http::error::need_more) {
        ec = {};
        break;
      }
      if (ec || parser.is_done() || used == 0) break;
    }
  }
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec) {
    if (auto res = parse_failure_response(ec)) {
      check(*res);
      if (res->keep_alive()) __builtin_trap();
    }
    return 0;
  }
  if (!parser.is_done()) return 0;
  auto d = route(parser.get(), served, enabled);
  if (d.what == action::unsubscribe) {
    if (!enabled || !(served & serves_unsubscribe)) __builtin_trap();
    d.res.body() = "unsubscribed\n";
  } else if (d.what != action::respond) {
    d.res.body() = "filled in\n";
  }
  finish(d.res);
  check(d.res);
  return 0;
}
