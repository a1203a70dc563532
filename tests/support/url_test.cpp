#include <catch2/catch.hpp>

#include "support/url.hpp"

using budstikke::support::redact_url;
using budstikke::support::without_userinfo;

TEST_CASE("url: the password of a URL's userinfo is redacted, the rest kept") {
  CHECK(redact_url("redis://budstikke:s3cret@redis.internal:6380/2") == "redis://budstikke:***@redis.internal:6380/2");
  CHECK(redact_url("rediss://:s3cret@10.0.0.1:6379") == "rediss://:***@10.0.0.1:6379");
  CHECK(redact_url("https://user:pw@sms.example/v1/send?to=1") == "https://user:***@sms.example/v1/send?to=1");
  // A userinfo without ':' may be a password alone (redis://s3cret@host).
  CHECK(redact_url("redis://s3cret@host") == "redis://***@host");
  CHECK(redact_url("redis://host:6379/0") == "redis://host:6379/0");
  CHECK(redact_url("") == "");
}

TEST_CASE("url: a password holding '@', '/', '?', '#' or '://' is hidden whole") {
  for (const char* url : {"redis://u:p@ss@host", "redis://u:p/ss@host/1", "redis://:p?ss#x@host", "redis://:a://b@host"}) {
    INFO(url);
    const auto r = redact_url(url);
    CHECK(r.find("ss") == std::string::npos);
    CHECK(r.find("a://b") == std::string::npos);
    CHECK((r.ends_with("***@host") || r.ends_with("***@host/1")));
  }
}

TEST_CASE("url: malformed URLs lose their password too") {
  // What a typo leaves: no scheme, a scheme without "//", a wrong scheme.
  CHECK(redact_url("redis//:s3cret@host") == "redis//:***@host");
  CHECK(redact_url(":s3cret@host") == ":***@host");
  CHECK(redact_url("redis:/:s3cret@host:1") == "redis:***@host:1");
  CHECK(redact_url("htp://u:s3cret@host") == "htp://u:***@host");
}

TEST_CASE("url: without_userinfo drops user and password") {
  CHECK(without_userinfo("https://user:secret@sms.example/v1/messages") == "https://sms.example/v1/messages");
  CHECK(without_userinfo("http://127.0.0.1:13013/cgi-bin/sendsms") == "http://127.0.0.1:13013/cgi-bin/sendsms");
  CHECK(without_userinfo("https://u:se/cret@gw.example/x") == "https://gw.example/x");
}
