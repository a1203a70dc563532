// The admin port's request handling without sockets: the answer each listener gives, and the
// per-source bound on POST /unsubscribe under a hand-driven clock.
#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <catch2/catch.hpp>

#include "admin/http.hpp"

using namespace budstikke::admin;
namespace http = boost::beast::http;
using boost::asio::ip::make_address;
using namespace std::chrono_literals;

namespace {

request make(http::verb method, std::string target, std::string body = {}) {
  request req{method, target, 11};
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

}  // namespace

TEST_CASE("admin route: what each listener answers") {
  auto get = [](std::string target, unsigned served) { return route(make(http::verb::get, target), served, true); };

  CHECK(get("/healthz", serves_all).res.result() == http::status::ok);
  CHECK(get("/healthz", serves_all).res.body() == "ok\n");
  CHECK(get("/readyz", serves_probes).what == action::readiness);
  CHECK(get("/metrics", serves_all).what == action::metrics);
  CHECK(get("/metrics", serves_all).res[http::field::content_type] == "text/plain; version=0.0.4; charset=utf-8");
  // A listener answers only for what it serves.
  CHECK(get("/metrics", serves_probes).res.result() == http::status::not_found);
  CHECK(get("/metrics", serves_unsubscribe).res.result() == http::status::not_found);
  CHECK(get("/healthz", serves_unsubscribe).res.result() == http::status::not_found);
  CHECK(route(make(http::verb::post, "/unsubscribe?t=x"), serves_probes | serves_metrics, true).res.result() ==
        http::status::not_found);
  CHECK(get("/", serves_all).res.result() == http::status::not_found);
  CHECK(get("/healthz?x=1", serves_all).res.result() == http::status::ok);

  auto post_metrics = route(make(http::verb::post, "/metrics"), serves_all, true);
  CHECK(post_metrics.res.result() == http::status::method_not_allowed);
  CHECK(post_metrics.res[http::field::allow] == "GET");
  // Every immediate answer carries its length.
  CHECK(post_metrics.res[http::field::content_length] == std::to_string(post_metrics.res.body().size()));
}

TEST_CASE("admin route: POST /unsubscribe takes the token from the query or a form body, and GET changes nothing") {
  auto q = route(make(http::verb::post, "/unsubscribe?t=abc%2Ddef", "List-Unsubscribe=One-Click"), serves_all, true);
  CHECK(q.what == action::unsubscribe);
  CHECK(q.token == "abc-def");
  auto form = route(make(http::verb::post, "/unsubscribe", "List-Unsubscribe=One-Click&token=xyz"), serves_unsubscribe, true);
  CHECK(form.what == action::unsubscribe);
  CHECK(form.token == "xyz");

  auto none = route(make(http::verb::post, "/unsubscribe", "List-Unsubscribe=One-Click"), serves_all, true);
  CHECK(none.what == action::respond);
  CHECK(none.res.result() == http::status::bad_request);
  auto get = route(make(http::verb::get, "/unsubscribe?t=abc"), serves_all, true);
  CHECK(get.what == action::respond);
  CHECK(get.res.result() == http::status::method_not_allowed);
  CHECK(get.res[http::field::allow] == "POST");
  auto disabled = route(make(http::verb::post, "/unsubscribe?t=abc"), serves_all, false);
  CHECK(disabled.what == action::respond);
  CHECK(disabled.res.result() == http::status::not_found);
}

TEST_CASE("admin route: answers that close the connection") {
  auto big = parse_failure_response(http::error::header_limit);
  REQUIRE(big);
  CHECK(big->result_int() == 431);
  CHECK_FALSE(big->keep_alive());
  CHECK(big->body() == "request header fields too large (at most 8 KiB)\n");
  CHECK(parse_failure_response(http::error::body_limit)->result_int() == 413);
  CHECK(parse_failure_response(http::error::bad_target)->result_int() == 400);
  CHECK(parse_failure_response(http::error::bad_version)->result_int() == 400);
  // A close or a timeout: no one to answer.
  CHECK_FALSE(parse_failure_response(http::error::end_of_stream));
  CHECK_FALSE(parse_failure_response(http::error::partial_message));
  CHECK_FALSE(parse_failure_response(boost::beast::error::timeout));
  std::string_view busy = busy_response();
  CHECK(busy.rfind("HTTP/1.1 503 ", 0) == 0);
  // The length it states is the length of its body.
  auto head_end = busy.find("\r\n\r\n");
  REQUIRE(head_end != std::string_view::npos);
  CHECK(busy.find("Content-Length: " + std::to_string(busy.size() - head_end - 4) + "\r\n") != std::string_view::npos);

  auto d = route(make(http::verb::post, "/unsubscribe?t=a"), serves_all, true);
  too_many_requests(d.res, 1s);
  CHECK(d.res.result() == http::status::too_many_requests);
  CHECK(d.res[http::field::retry_after] == "1");
}

TEST_CASE("source limiter: a burst of twice the rate, then the rate, per address") {
  source_limiter limiter(5);
  auto t = source_limiter::clock::time_point{} + 1h;
  auto a = make_address("192.0.2.7"), b = make_address("192.0.2.8");
  int allowed = 0;
  for (int i = 0; i < 30; ++i) allowed += limiter.allow(a, t);
  CHECK(allowed == 10);
  // Another address has its own bucket.
  CHECK(limiter.allow(b, t));
  // One token every 200 ms.
  CHECK_FALSE(limiter.allow(a, t + 100ms));
  CHECK(limiter.allow(a, t + 200ms));
  CHECK_FALSE(limiter.allow(a, t + 200ms));
  // After a quiet while the burst is back, not more.
  allowed = 0;
  for (int i = 0; i < 30; ++i) allowed += limiter.allow(a, t + 1h);
  CHECK(allowed == 10);
}

TEST_CASE("source limiter: an IPv6 /64 is one source, an IPv4-mapped address is its IPv4 address") {
  source_limiter limiter(1);
  auto t = source_limiter::clock::time_point{} + 1h;
  CHECK(limiter.allow(make_address("2001:db8:1:2::1"), t));
  CHECK(limiter.allow(make_address("2001:db8:1:2::2"), t));
  CHECK_FALSE(limiter.allow(make_address("2001:db8:1:2:ffff::9"), t));
  CHECK(limiter.allow(make_address("2001:db8:1:3::1"), t));  // another /64

  CHECK(limiter.allow(make_address("198.51.100.1"), t));
  CHECK(limiter.allow(make_address("::ffff:198.51.100.1"), t));
  CHECK_FALSE(limiter.allow(make_address("198.51.100.1"), t));
}

TEST_CASE("source limiter: many addresses cannot grow it beyond its bound") {
  source_limiter limiter(1, 100);
  auto t = source_limiter::clock::time_point{} + 1h;
  for (unsigned i = 0; i < 5000; ++i) {
    boost::asio::ip::address_v4 a(0x0A000000u + i);
    CHECK(limiter.allow(a, t));
    REQUIRE(limiter.sources() <= 100);
  }
}
