#include <catch2/catch.hpp>

#include "support/host_port.hpp"

using budstikke::support::parse_host_port;

TEST_CASE("host:port parsing") {
  auto a = parse_host_port("127.0.0.1:9464");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 9464);
  auto b = parse_host_port("[::1]:0");
  REQUIRE(b);
  CHECK(b->host == "::1");
  CHECK_FALSE(parse_host_port("9464"));
  CHECK_FALSE(parse_host_port("::1:9464"));
  CHECK_FALSE(parse_host_port("host:70000"));
  CHECK_FALSE(parse_host_port("host:"));
}
