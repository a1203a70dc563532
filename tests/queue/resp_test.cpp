#include <catch2/catch.hpp>

#include "queue/campaign_store.hpp"
#include "queue/resp.hpp"
#include "queue/redis.hpp"

using namespace budstikke::queue;

namespace {

reply_ptr parse_one(std::string_view bytes) {
  reply_parser p;
  REQUIRE(p.feed(bytes.data(), bytes.size()));
  bool err = false;
  auto r = p.next(err);
  REQUIRE_FALSE(err);
  return r;
}

}  // namespace

TEST_CASE("queue: a pipeline encodes commands as RESP arrays of bulk strings") {
  request req;
  req.command("XADD", "k", "*", "to", "ola@example.no");
  req.command("HINCRBY", std::string("c"), "sent", 42);
  CHECK(req.commands() == 2);
  CHECK(req.payload() ==
        "*5\r\n$4\r\nXADD\r\n$1\r\nk\r\n$1\r\n*\r\n$2\r\nto\r\n$14\r\nola@example.no\r\n"
        "*4\r\n$7\r\nHINCRBY\r\n$1\r\nc\r\n$4\r\nsent\r\n$2\r\n42\r\n");
}

TEST_CASE("queue: arguments with CR, LF and NUL are length-prefixed, never split into commands") {
  request req;
  req.command("SET", "k", std::string_view("a\r\nDEL x\0", 9));
  CHECK(req.commands() == 1);
  CHECK(req.payload() == std::string("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$9\r\na\r\nDEL x\0\r\n", 35));
}

TEST_CASE("queue: replies are parsed from chunks split at every byte") {
  const std::string wire = "+OK\r\n:12\r\n$5\r\nhallo\r\n*2\r\n$1\r\na\r\n$-1\r\n-ERR nope\r\n";
  for (std::size_t split = 0; split <= wire.size(); ++split) {
    reply_parser p;
    std::vector<reply_ptr> got;
    bool err = false;
    for (auto part : {wire.substr(0, split), wire.substr(split)}) {
      REQUIRE(p.feed(part.data(), part.size()));
      while (auto r = p.next(err)) got.push_back(std::move(r));
      REQUIRE_FALSE(err);
    }
    REQUIRE(got.size() == 5);
    CHECK(as_string(got[0].get()) == "OK");
    CHECK(as_integer(got[1].get()) == 12);
    CHECK(as_string(got[2].get()) == "hallo");
    CHECK(got[3]->elements == 2);
    CHECK(is_nil(got[3]->element[1]));
    CHECK(is_error(got[4].get()));
  }
}

TEST_CASE("queue: a stream that is not RESP is a protocol error") {
  reply_parser p;
  std::string junk = "HTTP/1.1 200 OK\r\n";
  p.feed(junk.data(), junk.size());
  bool err = false;
  auto r = p.next(err);
  CHECK(err);
  CHECK_FALSE(r);
}

TEST_CASE("queue: Redis URLs") {
  auto c = parse_redis_url("redis://:s3cret@redis.internal:6380/2");
  REQUIRE(c.has_value());
  CHECK(c->host == "redis.internal");
  CHECK(c->port == 6380);
  CHECK(c->database == 2);
  CHECK(c->password == "s3cret");
  CHECK(describe(*c) == "redis.internal:6380/2");

  auto d = parse_redis_url("redis://127.0.0.1");
  REQUIRE(d.has_value());
  CHECK(d->port == 6379);
  CHECK(d->database == 0);

  auto scheme = parse_redis_url("http://x");
  REQUIRE_FALSE(scheme.has_value());
  CHECK(scheme.error().message.find("redis://") != std::string::npos);
  auto port = parse_redis_url("redis://h:99999");
  REQUIRE_FALSE(port.has_value());
  CHECK(port.error().message.find("99999") != std::string::npos);
  auto db = parse_redis_url("redis://h/x");
  REQUIRE_FALSE(db.has_value());
  CHECK(db.error().message.find("'x'") != std::string::npos);
}

TEST_CASE("queue: Redis URLs with an ACL user, and rediss:// for TLS") {
  auto acl = parse_redis_url("redis://budstikke:s3cret@redis.internal:6380/2");
  REQUIRE(acl.has_value());
  CHECK(acl->username == "budstikke");
  CHECK(acl->password == "s3cret");
  CHECK_FALSE(acl->tls);
  // :password and a password alone are the default user's, as redis-cli reads them.
  for (const char* url : {"redis://:s3cret@h", "redis://s3cret@h"}) {
    auto p = parse_redis_url(url);
    REQUIRE(p.has_value());
    CHECK(p->username.empty());
    CHECK(p->password == "s3cret");
  }
  auto tls = parse_redis_url("rediss://budstikke:p:w@redis.example:6380");
  REQUIRE(tls.has_value());
  CHECK(tls->tls);
  CHECK(tls->host == "redis.example");
  CHECK(tls->port == 6380);
  CHECK(tls->password == "p:w");
  CHECK(describe(*tls) == "redis.example:6380/0");
}

TEST_CASE("queue: a malformed Redis URL's error never repeats its password") {
  for (const char* url : {"redis//:Pa55word@h:1", "http://u:Pa55word@h", "rediss:/:Pa55word@h", "redis://u:Pa55word@:1",
                          "redis://u:Pa55word@h:x", "redis://:Pa55word@h/y"}) {
    INFO(url);
    auto r = parse_redis_url(url);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("Pa55word") == std::string::npos);
  }
  auto scheme = parse_redis_url("redis//user:Pa55word@h:1");
  REQUIRE_FALSE(scheme.has_value());
  CHECK(scheme.error().message.find("'redis//user:***@h:1'") != std::string::npos);
}

TEST_CASE("queue: XREADGROUP replies are walked entry by entry, malformed entries flagged") {
  std::string wire =
      "*1\r\n*2\r\n$6\r\nstream\r\n*3\r\n"
      "*2\r\n$3\r\n1-0\r\n*6\r\n$2\r\nto\r\n$3\r\na@b\r\n$2\r\nid\r\n$2\r\nm1\r\n$4\r\ndata\r\n$2\r\n{}\r\n"
      "*2\r\n$3\r\n2-0\r\n$-1\r\n"
      "*2\r\n$3\r\n3-0\r\n*2\r\n$4\r\nname\r\n$3\r\nOla\r\n";
  auto r = parse_one(wire);
  std::vector<stream_entry> got;
  auto n = for_each_entry(r.get(), [&](std::string_view key, const stream_entry& e) {
    CHECK(key == "stream");
    got.push_back(e);
  });
  REQUIRE(n == 3);
  CHECK(got[0].id == "1-0");
  CHECK(got[0].to == "a@b");
  CHECK(got[0].member == "m1");
  CHECK(got[0].data == "{}");
  CHECK(got[0].well_formed);
  CHECK(got[1].id == "2-0");
  CHECK_FALSE(got[1].well_formed);  // deleted entry
  CHECK_FALSE(got[2].well_formed);  // no `to`
}

TEST_CASE("queue: a nil XREADGROUP reply has no entries") {
  auto r = parse_one("*-1\r\n");
  CHECK(for_each_entry(r.get(), [](auto, const auto&) { FAIL("no entry expected"); }) == 0);
}

TEST_CASE("queue: a command with more or fewer arguments than announced is refused, not sent misframed") {
  request fewer;
  fewer.begin(3).arg("SET").arg("k");
  CHECK_THROWS_AS(fewer.payload(), std::logic_error);
  CHECK_THROWS_AS(fewer.begin(1), std::logic_error);

  request more;
  more.begin(1).arg("PING");
  CHECK_THROWS_AS(more.arg("extra"), std::logic_error);

  request ok;
  ok.begin(2).arg("GET").arg("k");
  CHECK(ok.payload() == "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
}

TEST_CASE("queue: an array larger than any reply the engine asks for is a protocol error, not an allocation") {
  for (const std::string& announced : std::vector<std::string>{"*2147483647\r\n", "*1048577\r\n", "*\xff\xff\xff" "1\r\n"}) {
    reply_parser p;
    REQUIRE(p.feed(announced.data(), announced.size()));
    bool protocol_error = false;
    CHECK_FALSE(p.next(protocol_error));
    CHECK(protocol_error);
  }
  // The largest allowed, and a reply that follows a reset, still parse.
  reply_parser p;
  std::string big = "*1048576\r\n";
  for (int i = 0; i < (1 << 20); ++i) big += ":1\r\n";
  REQUIRE(p.feed(big.data(), big.size()));
  bool protocol_error = false;
  auto r = p.next(protocol_error);
  REQUIRE(r);
  CHECK_FALSE(protocol_error);
  CHECK(r->elements == (1u << 20));
}
