#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "adapters/sms_http/protocol.hpp"

using namespace budstikke::adapters;
using namespace budstikke::adapters::sms_http;
using namespace std::chrono_literals;

namespace {

gateway_config kannel() {
  gateway_config c;
  c.kind = gateway_kind::kannel;
  c.method = http_method::get;  // the default is post; get is what puts everything in the URL
  c.url = "http://127.0.0.1:13013/cgi-bin/sendsms";
  c.username = "budstikke";
  c.password = "p&ss=w?rd";
  return c;
}

gateway_config json_gateway() {
  gateway_config c;
  c.kind = gateway_kind::json;
  c.method = http_method::post;
  c.url = "https://api.example/v1/sms";
  c.id_path = "messages.0.id";
  return c;
}

// 1 Jan 2026 00:00:00 UTC
const auto new_year = std::chrono::system_clock::from_time_t(1767225600);

}  // namespace

TEST_CASE("sms request: form encoding keeps unreserved characters and escapes every other byte") {
  std::string out;
  append_form_encoded(out, "Az09-._~ +&=%/?æ€");
  CHECK(out == "Az09-._~%20%2B%26%3D%25%2F%3F%C3%A6%E2%82%AC");
}

TEST_CASE("sms request: Kannel GET carries every field in the query, coding 0 for GSM") {
  http_request r;
  build_request(kannel(), {"+4741234567", "Forbundet", "Hei Åse, møte kl. 18!", false}, r);
  CHECK(r.method == http_method::get);
  CHECK(r.url ==
        "http://127.0.0.1:13013/cgi-bin/sendsms?username=budstikke&password=p%26ss%3Dw%3Frd&from=Forbundet"
        "&to=%2B4741234567&text=Hei%20%C3%85se%2C%20m%C3%B8te%20kl.%2018%21&coding=0&charset=UTF-8");
  CHECK(r.body.empty());
  CHECK(r.headers.empty());
}

TEST_CASE("sms request: Kannel UCS-2 with delivery reports, URL that already has a query") {
  auto c = kannel();
  c.url = "http://gw/cgi-bin/sendsms?smsc=telenor";
  c.dlr_mask = "31";
  c.dlr_url = "https://portal.example/dlr?id=%i&s=%d";
  http_request r;
  build_request(c, {"+4790000000", "2222", "Привет", true}, r);
  CHECK(r.url ==
        "http://gw/cgi-bin/sendsms?smsc=telenor&username=budstikke&password=p%26ss%3Dw%3Frd&from=2222"
        "&to=%2B4790000000&text=%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82&coding=2&charset=UTF-8&dlr-mask=31"
        "&dlr-url=https%3A%2F%2Fportal.example%2Fdlr%3Fid%3D%25i%26s%3D%25d");
}

TEST_CASE("sms request: Kannel POST carries the text as the body and the rest in X-Kannel headers") {
  auto c = kannel();
  c.method = http_method::post;
  c.dlr_mask = "3";
  http_request r;
  build_request(c, {"+4741234567", "F\r\nX-Evil: 1", "a b æ", true}, r);
  CHECK(r.method == http_method::post);
  CHECK(r.url == "http://127.0.0.1:13013/cgi-bin/sendsms");
  CHECK(r.body == "a b æ");
  REQUIRE(r.headers.size() == 7);
  CHECK(r.headers[0] == "Content-Type: text/plain; charset=UTF-8");
  CHECK(r.headers[1] == "X-Kannel-Username: budstikke");
  CHECK(r.headers[2] == "X-Kannel-Password: p&ss=w?rd");
  CHECK(r.headers[3] == "X-Kannel-From: FX-Evil: 1");  // no header injection from a sender id
  CHECK(r.headers[4] == "X-Kannel-To: +4741234567");
  CHECK(r.headers[5] == "X-Kannel-Coding: 2");
  CHECK(r.headers[6] == "X-Kannel-DLR-Mask: 3");
}

TEST_CASE("sms request: JSON body with configured field names, bearer auth and extra headers") {
  auto c = json_gateway();
  c.to_field = "recipient";
  c.from_field = "sender";
  c.text_field = "message";
  c.encoding_field = "";
  c.bearer_token = "tok123";
  c.headers = {{"X-Tenant", "avd-tromso"}};
  http_request r;
  build_request(c, {"+4741234567", "Forbundet", "Sitat: \"ja\"\nny linje", false}, r);
  CHECK(r.method == http_method::post);
  CHECK(r.url == "https://api.example/v1/sms");
  CHECK(r.body == R"({"recipient":"+4741234567","sender":"Forbundet","message":"Sitat: \"ja\"\nny linje"})");
  REQUIRE(r.headers.size() == 4);
  CHECK(r.headers[0] == "Content-Type: application/json");
  CHECK(r.headers[1] == "Accept: application/json");
  CHECK(r.headers[2] == "Authorization: Bearer tok123");
  CHECK(r.headers[3] == "X-Tenant: avd-tromso");
}

TEST_CASE("sms request: JSON with basic auth and the encoding field") {
  auto c = json_gateway();
  c.username = "user";
  c.password = "pass";
  http_request r;
  build_request(c, {"+46701234567", "", "Ærlig talt", true}, r);
  CHECK(r.body == "{\"to\":\"+46701234567\",\"from\":\"\",\"text\":\"\xC3\x86rlig talt\",\"encoding\":\"ucs2\"}");
  CHECK(r.headers[2] == "Authorization: Basic dXNlcjpwYXNz");
}

TEST_CASE("sms answer: Retry-After in seconds and as HTTP-dates") {
  CHECK(parse_retry_after("1", new_year) == 1s);
  CHECK(parse_retry_after(" 120 ", new_year) == 120s);
  CHECK(parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", new_year) == 30s);
  CHECK(parse_retry_after("Thursday, 01-Jan-26 00:01:00 GMT", new_year) == 60s);
  CHECK(parse_retry_after("Thu Jan  1 00:00:05 2026", new_year) == 5s);
  CHECK(parse_retry_after("Wed, 31 Dec 2025 23:00:00 GMT", new_year) == 0s);  // in the past
  CHECK_FALSE(parse_retry_after("", new_year));
  CHECK_FALSE(parse_retry_after("-5", new_year));
  CHECK_FALSE(parse_retry_after("1.5", new_year));
  CHECK_FALSE(parse_retry_after("soon", new_year));
  CHECK_FALSE(parse_retry_after("Thu, 01 Jan 2026 00:00:30 CET", new_year));
}

TEST_CASE("sms answer: JSON value paths") {
  std::string body = R"({"messages":[{"id":"abc-1","status":"queued"},{"id":7}],"count":2,"ok":true})";
  CHECK(find_json_value(body, "messages.0.id") == "abc-1");
  CHECK(find_json_value(body, "messages.1.id") == "7");
  CHECK(find_json_value(body, "count") == "2");
  CHECK_FALSE(find_json_value(body, "messages.2.id"));
  CHECK_FALSE(find_json_value(body, "messages.x.id"));
  CHECK_FALSE(find_json_value(body, "messages"));  // an array is not an id
  CHECK_FALSE(find_json_value(body, "ok"));
  CHECK_FALSE(find_json_value("not json", "id"));
  CHECK_FALSE(find_json_value("", "id"));
}

TEST_CASE("sms answer: Kannel status codes and bodies") {
  auto c = kannel();
  verdict v;
  classify(c, {202, "", "0: Accepted for delivery"}, new_year, v);
  CHECK(v.result == outcome::accepted);
  CHECK(v.reply == "202 0: Accepted for delivery");
  CHECK(v.provider_id.empty());
  classify(c, {202, "", "3: Queued for later delivery"}, new_year, v);
  CHECK(v.result == outcome::accepted);
  classify(c, {200, "", "Sent."}, new_year, v);
  CHECK(v.result == outcome::ambiguous);
  classify(c, {403, "", "Authorization failed for sendsms"}, new_year, v);
  CHECK(v.result == outcome::permanent);
  CHECK(v.reply == "403 Authorization failed for sendsms");
  classify(c, {400, "", "Missing receiver number"}, new_year, v);
  CHECK(v.result == outcome::permanent);
  // smsbox could not queue it (bearerbox away): the gateway's failure, not the message's.
  classify(c, {503, "", "Temporal failure, try again later."}, new_year, v);
  CHECK(v.result == outcome::unsent);
  CHECK(v.retry_after == 0ms);
  CHECK(v.reply == "503 Temporal failure, try again later.");
}

TEST_CASE("sms answer: JSON gateway 2xx with and without the id, 4xx, 5xx") {
  auto c = json_gateway();
  verdict v;
  classify(c, {201, "", R"({"messages":[{"id":"m-42"}]})"}, new_year, v);
  CHECK(v.result == outcome::accepted);
  CHECK(v.provider_id == "m-42");
  classify(c, {200, "", "OK"}, new_year, v);
  CHECK(v.result == outcome::accepted);
  CHECK(v.provider_id.empty());
  classify(c, {400, "", "{\"error\":\"bad number\"}\nmore"}, new_year, v);
  CHECK(v.result == outcome::permanent);
  CHECK(v.reply == "400 {\"error\":\"bad number\"}");
  classify(c, {404, "", ""}, new_year, v);
  CHECK(v.result == outcome::permanent);
  CHECK(v.reply == "404 ");
  classify(c, {500, "", "boom"}, new_year, v);
  CHECK(v.result == outcome::transient);
  classify(c, {502, "", ""}, new_year, v);
  CHECK(v.result == outcome::unsent);  // a proxy cannot reach the gateway: the path failed
  classify(c, {504, "", ""}, new_year, v);
  CHECK(v.result == outcome::unsent);
  classify(c, {302, "", ""}, new_year, v);
  CHECK(v.result == outcome::permanent);
}

TEST_CASE("sms answer: 429 and 503 honour Retry-After, capped") {
  auto c = json_gateway();
  c.max_retry_after = 60s;
  verdict v;
  classify(c, {429, "1", "slow down"}, new_year, v);
  CHECK(v.result == outcome::transient);
  CHECK(v.retry_after == 1000ms);
  classify(c, {503, "Thu, 01 Jan 2026 00:00:10 GMT", ""}, new_year, v);
  CHECK(v.result == outcome::transient);
  CHECK(v.retry_after == 10000ms);
  classify(c, {429, "86400", ""}, new_year, v);
  CHECK(v.retry_after == 60000ms);
  classify(c, {429, "garbage", ""}, new_year, v);
  CHECK(v.result == outcome::transient);
  CHECK(v.retry_after == 0ms);
  // Retry-After on another status is not a pause.
  classify(c, {500, "5", ""}, new_year, v);
  CHECK(v.retry_after == 0ms);
}

TEST_CASE("sms answer: a reply is printable and bounded, whatever the body") {
  verdict v;
  std::string body(1000, 'x');
  body[3] = '\x01';
  body[4] = '\xc3';
  classify(json_gateway(), {500, "", body}, new_year, v);
  CHECK(v.reply.size() == 4 + 200);
  CHECK(v.reply.substr(4, 6) == "xxx??x");
}

TEST_CASE("sms answer: transport failures before and after the request went out") {
  verdict v;
  // Nothing reached the gateway: the path failed, the message is unsent (not an attempt).
  classify(transport_failure::connect, "Connection refused", v);
  CHECK(v.result == outcome::unsent);
  CHECK(v.reply == "local: cannot reach the gateway: Connection refused");
  classify(transport_failure::send, "", v);
  CHECK(v.result == outcome::unsent);
  classify(transport_failure::timeout_unsent, "", v);
  CHECK(v.result == outcome::unsent);
  classify(transport_failure::timeout_after_send, "Operation timed out", v);
  CHECK(v.result == outcome::ambiguous);
  classify(transport_failure::lost_after_send, "Empty reply from server", v);
  CHECK(v.result == outcome::ambiguous);
}

TEST_CASE("sms gateway: its name and the probe's URL carry no credentials and no query") {
  gateway_config c;
  c.url = "http://127.0.0.1:13013/cgi-bin/sendsms";
  CHECK(gateway_name(c) == "http://127.0.0.1:13013/cgi-bin/sendsms");
  CHECK(probe_url(c) == "http://127.0.0.1:13013/cgi-bin/sendsms");
  c.url = "https://user:secret@sms.example/v1/messages?key=abc#x";
  CHECK(gateway_name(c) == "https://sms.example/v1/messages");
  CHECK(probe_url(c) == "https://user:secret@sms.example/v1/messages");
  c.url = "https://user:se/cr@et@sms.example/v1/messages";  // a password holding '/' and '@'
  CHECK(gateway_name(c) == "https://sms.example/v1/messages");
}
