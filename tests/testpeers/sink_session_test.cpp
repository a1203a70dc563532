// The sink's server session, with no socket: pipelined input in any chunking.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "testpeers/session.hpp"

using namespace budstikke::testpeers;

namespace {

struct fake_host final : session_host {
  std::vector<std::string> bodies;
  std::vector<std::vector<std::string>> recipients;
  bool transient_rcpt = false;
  dot_fate fate = dot_fate::accept;
  std::uint64_t limit = 0;

  bool rcpt_transient(std::string_view) override { return transient_rcpt; }
  bool rcpt_rejected(std::string_view a) override { return a.find("reject") != std::string_view::npos; }
  dot_fate on_dot() override { return fate; }
  std::uint64_t on_message(std::string_view, const std::vector<std::string>& rcpts, std::size_t n,
                           std::string_view body, std::size_t bytes) override {
    CHECK(bytes == body.size());
    bodies.emplace_back(body);
    recipients.emplace_back(rcpts.begin(), rcpts.begin() + static_cast<std::ptrdiff_t>(n));
    return bodies.size();
  }
  bool keep_bodies() const override { return true; }
  std::uint64_t size_limit() const override { return limit; }
};

const std::string pipelined_input =
    "EHLO client\r\n"
    "MAIL FROM:<a@example.org> SIZE=20\r\nRCPT TO:<x@example.org>\r\nDATA\r\n"
    "..leading\r\nmid\r\n...two\r\n.\r\n"
    "MAIL FROM:<a@example.org>\r\nRCPT TO:<y@example.org>\r\nRCPT TO:<reject@example.org>\r\nDATA\r\n"
    ".\r\n"
    "RSET\r\nNOOP\r\nQUIT\r\n";

const std::string expected_replies =
    "220 budstikke-sink ESMTP\r\n"
    "250-budstikke-sink\r\n250-PIPELINING\r\n250-SIZE 0\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
    "250 ENHANCEDSTATUSCODES\r\n"
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    "250 2.0.0 Ok: queued as 1\r\n"
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 Recipient address rejected: User unknown\r\n"
    "354 End data with <CR><LF>.<CR><LF>\r\n"
    "250 2.0.0 Ok: queued as 2\r\n"
    "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n";

}  // namespace

TEST_CASE("smtp sink session: pipelined input split at every position", "[smtp][sink]") {
  for (std::size_t split = 0; split <= pipelined_input.size(); ++split) {
    fake_host host;
    server_session s(host);
    s.start();
    auto v = s.feed(std::string_view(pipelined_input).substr(0, split));
    if (split < pipelined_input.size()) {
      REQUIRE(v == server_session::verdict::more);
      v = s.feed(std::string_view(pipelined_input).substr(split));
    }
    CHECK(v == server_session::verdict::close);
    REQUIRE(s.out() == expected_replies);
    REQUIRE(host.bodies.size() == 2);
    CHECK(host.bodies[0] == ".leading\r\nmid\r\n..two\r\n");
    CHECK(host.bodies[1].empty());
    CHECK(host.recipients[0] == std::vector<std::string>{"x@example.org"});
    CHECK(host.recipients[1] == std::vector<std::string>{"y@example.org"});
  }
}

TEST_CASE("smtp sink session: byte by byte", "[smtp][sink]") {
  fake_host host;
  server_session s(host);
  s.start();
  auto v = server_session::verdict::more;
  for (char c : pipelined_input) v = s.feed(std::string_view(&c, 1));
  CHECK(v == server_session::verdict::close);
  CHECK(s.out() == expected_replies);
  CHECK(host.bodies.size() == 2);
}

TEST_CASE("smtp sink session: dot edge cases in the body", "[smtp][sink]") {
  fake_host host;
  server_session s(host);
  s.feed("HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n");
  s.feed(".\rx\r\n.a\r\n\r\n.\r\n");
  REQUIRE(host.bodies.size() == 1);
  CHECK(host.bodies[0] == "\rx\r\na\r\n\r\n");
}

TEST_CASE("smtp sink session: sequence errors and faults", "[smtp][sink]") {
  fake_host host;
  server_session s(host);
  s.feed("RCPT TO:<x@example.org>\r\nDATA\r\nMAIL FROM:<a@b>\r\nMAIL FROM:<a@b>\r\nDATA\r\nBOGUS\r\n");
  CHECK(s.out() ==
        "503 5.5.1 Error: need MAIL command\r\n503 5.5.1 Error: need MAIL command\r\n250 2.1.0 Ok\r\n"
        "503 5.5.1 Error: nested MAIL command\r\n554 5.5.1 Error: no valid recipients\r\n"
        "502 5.5.2 Error: command not recognized\r\n");
  s.out().clear();
  host.transient_rcpt = true;
  s.feed("RCPT TO:<x@example.org>\r\n");
  CHECK(s.out() == "451 4.3.0 Error: try again later\r\n");
  s.out().clear();
  host.transient_rcpt = false;
  host.fate = session_host::dot_fate::transient;
  s.feed("RCPT TO:<x@example.org>\r\nDATA\r\nbody\r\n.\r\n");
  CHECK(s.out() == "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n451 4.3.0 Error: try again later\r\n");
  s.out().clear();
  host.fate = session_host::dot_fate::drop;
  auto v = s.feed("MAIL FROM:<a@b>\r\nRCPT TO:<x@example.org>\r\nDATA\r\nbody\r\n.\r\nMAIL FROM:<a@b>\r\n");
  CHECK(v == server_session::verdict::drop);
  CHECK(s.out() == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
  CHECK(host.bodies.empty());
}

TEST_CASE("smtp sink session: long command lines and SIZE", "[smtp][sink]") {
  fake_host host;
  host.limit = 10;
  server_session s(host);
  s.feed(std::string(5000, 'x'));
  s.feed(std::string(100, 'x') + "\r\nNOOP\r\n");
  CHECK(s.out() == "500 5.5.0 Error: line too long\r\n250 2.0.0 Ok\r\n");
  s.out().clear();
  s.feed("MAIL FROM:<a@b> SIZE=11\r\nMAIL FROM:<a@b> SIZE=10\r\nRCPT TO:<x@y>\r\nDATA\r\n0123456789\r\n.\r\n");
  CHECK(s.out() ==
        "552 5.3.4 Error: message too large\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
        "354 End data with <CR><LF>.<CR><LF>\r\n552 5.3.4 Error: message too large\r\n");
}
