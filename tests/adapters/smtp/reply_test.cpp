#include <catch2/catch.hpp>

#include <string>

#include "adapters/smtp/reply.hpp"

using namespace budstikke::adapters::smtp;

namespace {

// Feeds `in` in chunks of `chunk` bytes; returns bytes consumed up to the end of one reply.
std::size_t feed_chunked(reply_parser& p, std::string_view in, std::size_t chunk) {
  std::size_t used = 0;
  while (used < in.size() && !p.done() && !p.error()) {
    std::string_view part = in.substr(used, std::min(chunk, in.size() - used));
    std::size_t n = p.feed(part);
    used += n;
    if (n < part.size()) break;
  }
  return used;
}

}  // namespace

TEST_CASE("smtp reply: single line with enhanced status code", "[smtp][reply]") {
  reply_parser p;
  std::string in = "250 2.1.0 Sender ok\r\n";
  REQUIRE(p.feed(in) == in.size());
  REQUIRE(p.done());
  CHECK(p.get().code == 250);
  CHECK(p.get().cls() == 2);
  CHECK(p.get().enhanced.cls == 2);
  CHECK(p.get().enhanced.subject == 1);
  CHECK(p.get().enhanced.detail == 0);
  CHECK(p.get().text == "2.1.0 Sender ok");
  std::string d;
  describe(p.get(), d);
  CHECK(d == "250 2.1.0 Sender ok");
}

TEST_CASE("smtp reply: every reply class", "[smtp][reply]") {
  for (std::string code : {"220", "250", "354", "421", "451", "550", "554"}) {
    reply_parser p;
    std::string in = code + " text\r\n";
    p.feed(in);
    REQUIRE(p.done());
    CHECK(p.get().code == std::stoi(code));
    CHECK(p.get().cls() == code[0] - '0');
  }
}

TEST_CASE("smtp reply: multi-line, byte by byte", "[smtp][reply]") {
  std::string in =
      "250-mx.example.org Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 ENHANCEDSTATUSCODES\r\nXYZ";
  for (std::size_t chunk : {1, 2, 3, 7, 1000}) {
    reply_parser p;
    std::size_t used = feed_chunked(p, in, chunk);
    REQUIRE(p.done());
    CHECK(used == in.size() - 3);  // stops at the end of the reply
    CHECK(p.get().code == 250);
    CHECK(p.get().lines == 4);
    CHECK(p.get().text == "mx.example.org Hello\nPIPELINING\nSIZE 1000\nENHANCEDSTATUSCODES");
    CHECK_FALSE(p.get().enhanced);
  }
}

TEST_CASE("smtp reply: several replies in one chunk are taken one at a time", "[smtp][reply]") {
  reply_parser p;
  std::string_view in = "250 2.0.0 ok\r\n550-5.1.1 no\r\n550 5.1.1 such user\r\n354 go\r\n";
  std::size_t n = p.feed(in);
  REQUIRE(p.done());
  CHECK(p.get().code == 250);
  in.remove_prefix(n);
  p.next();
  n = p.feed(in);
  REQUIRE(p.done());
  CHECK(p.get().code == 550);
  CHECK(p.get().enhanced.cls == 5);
  CHECK(p.get().enhanced.subject == 1);
  CHECK(p.get().enhanced.detail == 1);
  std::string d;
  describe(p.get(), d);
  CHECK(d == "550 5.1.1 no 5.1.1 such user");
  in.remove_prefix(n);
  p.next();
  p.feed(in);
  REQUIRE(p.done());
  CHECK(p.get().code == 354);
}

TEST_CASE("smtp reply: code only, bare LF, enhanced code of another class", "[smtp][reply]") {
  reply_parser p;
  p.feed("250\r\n");
  REQUIRE(p.done());
  CHECK(p.get().code == 250);
  CHECK(p.get().text.empty());
  p.reset();
  p.feed("221 bye\n");
  REQUIRE(p.done());
  CHECK(p.get().text == "bye");
  p.reset();
  p.feed("250 5.1.1 odd\r\n");  // class mismatch: not an enhanced code (RFC 3463)
  REQUIRE(p.done());
  CHECK_FALSE(p.get().enhanced);
  p.reset();
  p.feed("451 4.3.0\r\n");
  REQUIRE(p.done());
  CHECK(p.get().enhanced.cls == 4);
  p.reset();
  p.feed("250 2.0.0x\r\n");
  REQUIRE(p.done());
  CHECK_FALSE(p.get().enhanced);
}

TEST_CASE("smtp reply: malformed input is an error", "[smtp][reply]") {
  for (std::string bad : {"25\r\n", "abc ok\r\n", "250xok\r\n", "650 no\r\n", "2a0 x\r\n",
                          "250-a\r\n251 b\r\n", "\r\n"}) {
    reply_parser p;
    p.feed(bad);
    INFO(bad);
    CHECK_FALSE(p.done());
    CHECK(p.error() == error::malformed_reply);
  }
}

TEST_CASE("smtp reply: line and reply length are bounded", "[smtp][reply]") {
  reply_parser p;
  std::string longline = "250 " + std::string(reply_parser::max_line, 'x');
  p.feed(longline.substr(0, 100));
  CHECK_FALSE(p.error());
  p.feed(longline.substr(100));
  CHECK(p.error() == error::reply_line_too_long);

  reply_parser q;
  std::string many;
  for (std::size_t i = 0; i <= reply_parser::max_lines; ++i) many += "250-x\r\n";
  q.feed(many);
  CHECK(q.error() == error::reply_too_many_lines);

  reply_parser r;  // a line of exactly max_line bytes is fine
  std::string ok = "250 " + std::string(reply_parser::max_line - 6, 'y') + "\r\n";
  r.feed(ok);
  CHECK(r.done());
}

TEST_CASE("smtp reply: describe strips control characters and truncates", "[smtp][reply]") {
  reply_parser p;
  p.feed("550 bad\x01text\x7f\r\n");
  std::string d;
  describe(p.get(), d, 9);
  CHECK(d == "550 bad t");
}
