// The admin server in-process: probes, metrics, the answers to wrong methods and oversized heads.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include "admin/server.hpp"
#include "engine/metrics.hpp"
#include "testpeers/http_client.hpp"

using namespace budstikke;
using engine::metrics::registry;
using support::host_port;
using testpeers::http_get;

namespace {

// Writes `request` as is and returns everything the server sends until it closes.
std::string raw_exchange(std::uint16_t port, const std::string& request) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket s(ioc);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  boost::system::error_code ec;
  boost::asio::write(s, boost::asio::buffer(request), ec);
  std::string reply;
  char buf[4096];
  for (;;) {
    auto n = s.read_some(boost::asio::buffer(buf), ec);
    reply.append(buf, n);
    if (ec) break;
  }
  return reply;
}

}  // namespace

TEST_CASE("admin http: /metrics, /healthz, /readyz, 404 and 405") {
  registry reg;
  reg.expect_shards(1);
  admin::server server({"127.0.0.1", 0}, reg);
  host_port at{"127.0.0.1", server.port()};
  const auto t = std::chrono::seconds(5);

  auto health = http_get(at, "/healthz", t);
  REQUIRE(health);
  CHECK(health->status == 200);
  auto ready = http_get(at, "/readyz", t);
  REQUIRE(ready);
  CHECK(ready->status == 503);
  reg.shard(0).ready = true;
  ready = http_get(at, "/readyz", t);
  REQUIRE(ready);
  CHECK(ready->status == 200);
  auto m = http_get(at, "/metrics", t);
  REQUIRE(m);
  CHECK(m->status == 200);
  CHECK(m->content_type.find("version=0.0.4") != std::string::npos);
  CHECK(m->body.find("# TYPE budstikke_messages_total counter") != std::string::npos);
  auto missing = http_get(at, "/", t);
  REQUIRE(missing);
  CHECK(missing->status == 404);

  auto post = raw_exchange(server.port(), "POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(post.rfind("HTTP/1.1 405", 0) == 0);
  CHECK(post.find("Allow: GET") != std::string::npos);
  // Headers beyond the bound: no answer, the connection is closed.
  auto huge = raw_exchange(server.port(), "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(20000, 'a') + "\r\n\r\n");
  CHECK(huge.empty());
  // Still serving.
  CHECK(http_get(at, "/healthz", t));
}
