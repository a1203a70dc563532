#include <catch2/catch.hpp>

#include "testpeers/sms_sink.hpp"
#include "adapters/sms_http/protocol.hpp"

using namespace budstikke;
using namespace budstikke::adapters;

TEST_CASE("sms sink: Kannel form fields decode what the request builder encodes") {
  sms_http::gateway_config c;
  c.url = "http://x/cgi-bin/sendsms";
  c.method = sms_http::http_method::get;  // the query string; POST sends the same fields in the body and X-Kannel headers
  c.username = "u s";
  c.password = "p&=";
  sms_http::http_request r;
  sms_http::build_request(c, {"+4741234567", "Forbundet Øst", "Hei + hå € 100%", true}, r);
  testpeers::sms_request_fields f;
  REQUIRE(testpeers::parse_kannel_form(r.url.substr(r.url.find('?') + 1), f));
  CHECK(f.username == "u s");
  CHECK(f.password == "p&=");
  CHECK(f.from == "Forbundet Øst");
  CHECK(f.to == "+4741234567");
  CHECK(f.text == "Hei + hå € 100%");
  CHECK(f.coding == "2");
}

TEST_CASE("sms sink: plus is a space in forms, malformed escapes are refused") {
  testpeers::sms_request_fields f;
  REQUIRE(testpeers::parse_kannel_form("text=a+b&to=1", f));
  CHECK(f.text == "a b");
  CHECK_FALSE(testpeers::parse_kannel_form("text=%4", f));
  CHECK_FALSE(testpeers::parse_kannel_form("text=%zz", f));
  CHECK(testpeers::parse_kannel_form("", f));
}
