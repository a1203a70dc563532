// The admin port's HTTP handling without sockets: which answer a parsed request gets on a
// listener, what a parse failure is answered with, and the per-source bound on unsubscribes.
// admin/server.cpp does the reads and writes around it; the fuzz harness drives it with bytes.
// Beast's message types are in this header: only server.cpp, its tests and the harness include it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/asio/ip/address.hpp>
#include <boost/system/error_code.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "admin/server.hpp"

namespace budstikke::admin {

using request = boost::beast::http::request<boost::beast::http::string_body>;
using response = boost::beast::http::response<boost::beast::http::string_body>;

constexpr std::size_t max_header_bytes = 8 * 1024;
constexpr std::size_t max_body_bytes = 4 * 1024;

// What the server must do with a request: send `res` as it is, or fill it in first.
enum class action {
  respond,      // res is complete
  metrics,      // res needs the Prometheus text as its body
  readiness,    // res needs the shards' readiness
  unsubscribe,  // apply `token` (Redis), then answer
};

struct decision {
  action what = action::respond;
  response res;       // status, headers and body for `respond`; the headers for the others
  std::string token;  // for `unsubscribe`
};

// `unsubscribe_enabled`: an unsubscribe secret is configured.
decision route(const request& req, unsigned served, bool unsubscribe_enabled);

// The answer to a request the parser refused with `ec`: 431 for a head over max_header_bytes,
// 413 for a body over max_body_bytes, 400 for anything malformed; none for a close or a timeout
// (there is no one to answer). The connection closes after it.
std::optional<response> parse_failure_response(const boost::system::error_code& ec);

// The quick answer to a connection beyond the listener's limit, written before reading anything.
std::string_view busy_response();

// A request over the per-source bound (`res` as route() started it).
void too_many_requests(response& res, std::chrono::seconds retry_after);

// Sets Content-Length (and nothing else) from the body.
void finish(response& res);

// At most `per_second` unsubscribe requests a second from one source (an IPv4 address, or an IPv6
// /64 — one host usually holds a whole /64), in bursts of twice that. It remembers at most
// `max_sources` sources; beyond, the quietest go first, so a flood from many addresses cannot grow
// it (Redis stays bounded by the server's connection pool whatever this lets through).
class source_limiter {
 public:
  using clock = std::chrono::steady_clock;
  explicit source_limiter(unsigned per_second, std::size_t max_sources = 4096);

  // True when the source may make one more request at `now` (and takes it).
  bool allow(const boost::asio::ip::address& source, clock::time_point now);
  std::size_t sources() const { return buckets_.size(); }

 private:
  struct bucket {
    double tokens;
    clock::time_point at;
  };
  using key = std::array<std::uint8_t, 16>;
  struct key_hash {
    std::size_t operator()(const key& k) const noexcept;
  };
  static key key_of(const boost::asio::ip::address& a);
  void forget_idle(clock::time_point now);

  double per_second_, burst_;
  std::size_t max_sources_;
  std::unordered_map<key, bucket, key_hash> buckets_;
};

}  // namespace budstikke::admin
