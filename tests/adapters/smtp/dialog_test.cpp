// The client dialog, byte by byte, with no socket.
#include <catch2/catch.hpp>

#include <deque>
#include <string>
#include <vector>

#include "adapters/smtp/dialog.hpp"
#include "tests/adapters/smtp/dialog_fakes.hpp"

using namespace budstikke::adapters;
using namespace budstikke::adapters::smtp;
using namespace budstikke::testing;

namespace {

dialog_options options(std::string helo_name, std::size_t max_messages) {
  dialog_options o;
  o.helo_name = std::move(helo_name);
  o.max_messages = max_messages;
  return o;
}

constexpr std::string_view ehlo_pipelining =
    "250-sink.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n";
constexpr std::string_view ehlo_plain = "250-sink.example\r\n250 8BITMIME\r\n";

struct fixture {
  fake_source source;
  recorder listener;
  dialog machine{options("client.example", 1000), source, listener};

  // Greeting and EHLO; returns the step after the EHLO reply.
  step handshake(std::string_view ehlo_reply) {
    step s = machine.on_connected();
    REQUIRE(s.what == step::kind::read);
    s = machine.on_read("220 sink.example ESMTP\r\n");
    REQUIRE(s.what == step::kind::write);
    REQUIRE(s.bytes == "EHLO client.example\r\n");
    s = machine.on_written();
    REQUIRE(s.what == step::kind::read);
    return machine.on_read(ehlo_reply);
  }
};

std::string envelope(const delivery& d) {
  return "MAIL FROM:<" + d.envelope_from + ">\r\nRCPT TO:<" + d.envelope_to + ">\r\nDATA\r\n";
}

}  // namespace

TEST_CASE("smtp dialog: greeting refused closes the connection", "[smtp][dialog]") {
  for (auto [greeting, reason] : {std::pair{"421 4.3.2 busy\r\n", error::service_closing},
                                  std::pair{"554 5.7.1 go away\r\n", error::greeting_refused}}) {
    fixture f;
    delivery d = make("a@example.org");
    f.source.items.push_back(&d);
    step s = f.machine.on_connected();
    s = f.machine.on_read(greeting);
    CHECK(s.what == step::kind::close);
    CHECK(f.machine.close_reason() == reason);
    CHECK_FALSE(f.machine.established());
    CHECK(f.listener.done.empty());  // nothing was taken
    CHECK(f.source.items.size() == 1);
  }
}

TEST_CASE("smtp dialog: EHLO capabilities", "[smtp][dialog]") {
  fixture f;
  step s = f.handshake(
      "250-mx.example Hello\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n"
      "250-SMTPUTF8\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=CRAM-MD5\r\n"
      "250 ENHANCEDSTATUSCODES\r\n");
  CHECK(s.what == step::kind::wait_for_work);
  const capabilities& c = f.machine.caps();
  CHECK(c.esmtp);
  CHECK(c.pipelining);
  CHECK(c.size);
  CHECK(c.size_limit == 35882577);
  CHECK(c.eightbitmime);
  CHECK(c.smtputf8);
  CHECK(c.starttls);
  CHECK(c.enhanced_status_codes);
  CHECK(c.auth == "PLAIN LOGIN CRAM-MD5");
  CHECK(f.machine.established());
}

TEST_CASE("smtp dialog: EHLO refused falls back to HELO, then lock-step", "[smtp][dialog]") {
  fixture f;
  delivery d = make("a@example.org");
  f.source.items.push_back(&d);
  step s = f.handshake("502 5.5.2 what\r\n");
  REQUIRE(s.what == step::kind::write);
  CHECK(s.bytes == "HELO client.example\r\n");
  s = f.machine.on_written();
  s = f.machine.on_read("250 hi\r\n");
  CHECK_FALSE(f.machine.caps().esmtp);
  REQUIRE(s.what == step::kind::write);
  CHECK(s.bytes == "MAIL FROM:<from@example.org>\r\n");
  s = f.machine.on_written();
  s = f.machine.on_read("250 ok\r\n");
  CHECK(s.bytes == "RCPT TO:<a@example.org>\r\n");
  s = f.machine.on_written();
  s = f.machine.on_read("250 ok\r\n");
  CHECK(s.bytes == "DATA\r\n");
  s = f.machine.on_written();
  s = f.machine.on_read("354 go\r\n");
  REQUIRE(s.what == step::kind::write);
  CHECK(s.timeout == timeout_kind::data);
  CHECK(s.bytes == d.data + ".\r\n");
  s = f.machine.on_written();
  CHECK(s.what == step::kind::read);
  CHECK(s.timeout == timeout_kind::data);
  s = f.machine.on_read("250 queued\r\n");
  REQUIRE(f.listener.done.size() == 1);
  CHECK(d.result == outcome::accepted);
  CHECK(d.reply == "250 queued");
  CHECK(s.what == step::kind::wait_for_work);
}

TEST_CASE("smtp dialog: EHLO and HELO refused", "[smtp][dialog]") {
  fixture f;
  step s = f.handshake("500 no\r\n");
  s = f.machine.on_written();
  s = f.machine.on_read("501 no either\r\n");
  CHECK(s.what == step::kind::close);
  CHECK(f.machine.close_reason() == error::hello_refused);
}

TEST_CASE("smtp dialog: pipelined, the next envelope rides with the dot", "[smtp][dialog]") {
  const std::string second_replies = "250 2.0.0 Ok: queued as 1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n";
  // The reply to the first dot and the next envelope's replies, split at every byte position.
  for (std::size_t split = 0; split <= second_replies.size(); ++split) {
    fixture f;
    delivery d1 = make("one@example.org"), d2 = make("two@example.org"), d3 = make("three@example.org");
    f.source.items = {&d1, &d2, &d3};
    step s = f.handshake(ehlo_pipelining);
    REQUIRE(s.what == step::kind::write);
    REQUIRE(s.bytes == envelope(d1));  // MAIL, RCPT, DATA in one write
    s = f.machine.on_written();
    REQUIRE(s.what == step::kind::read);
    s = f.machine.on_read("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
    REQUIRE(s.what == step::kind::write);
    REQUIRE(s.bytes == d1.data + ".\r\n" + envelope(d2));
    s = f.machine.on_written();
    REQUIRE(s.what == step::kind::read);
    CHECK(s.timeout == timeout_kind::data);

    s = f.machine.on_read(std::string_view(second_replies).substr(0, split));
    if (split < 27) CHECK(f.listener.done.empty());
    if (split < second_replies.size()) {
      REQUIRE(s.what == step::kind::read);
      s = f.machine.on_read(std::string_view(second_replies).substr(split));
    }
    REQUIRE(f.listener.done.size() == 1);
    CHECK(d1.result == outcome::accepted);
    CHECK(d1.reply == "250 2.0.0 Ok: queued as 1");
    REQUIRE(s.what == step::kind::write);
    CHECK(s.bytes == d2.data + ".\r\n" + envelope(d3));
  }
}

TEST_CASE("smtp dialog: pipelined replies fed one byte at a time", "[smtp][dialog]") {
  fixture f;
  std::vector<delivery> ds;
  for (int i = 0; i < 5; ++i) ds.push_back(make("r" + std::to_string(i) + "@example.org"));
  for (auto& d : ds) f.source.items.push_back(&d);
  step s = f.handshake(ehlo_pipelining);
  std::string replies = "250 ok\r\n250 ok\r\n354 go\r\n";
  for (int i = 0; i < 5; ++i) {
    REQUIRE(s.what == step::kind::write);
    s = f.machine.on_written();
    for (char c : replies) {
      REQUIRE(s.what == step::kind::read);
      s = f.machine.on_read(std::string_view(&c, 1));
    }
    replies = "250 2.0.0 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n";
  }
  // The last body went out alone; its dot reply ends the run.
  REQUIRE(s.what == step::kind::write);
  CHECK(s.bytes == ds[4].data + ".\r\n");
  s = f.machine.on_written();
  s = f.machine.on_read("250 2.0.0 queued\r\n");
  CHECK(s.what == step::kind::wait_for_work);
  REQUIRE(f.listener.done.size() == 5);
  for (auto& d : ds) CHECK(d.result == outcome::accepted);
}

TEST_CASE("smtp dialog: the reply to the dot decides", "[smtp][dialog]") {
  for (auto [dot_reply, expected] : {std::pair{"250 2.0.0 ok\r\n", outcome::accepted},
                                     std::pair{"451 4.3.0 later\r\n", outcome::transient},
                                     std::pair{"452 4.3.1 full\r\n", outcome::transient},
                                     std::pair{"554 5.7.1 spam\r\n", outcome::permanent},
                                     std::pair{"552 5.3.4 big\r\n", outcome::permanent}}) {
    fixture f;
    delivery d1 = make("a@example.org"), d2 = make("b@example.org");
    f.source.items = {&d1};
    step s = f.handshake(ehlo_pipelining);
    s = f.machine.on_written();
    s = f.machine.on_read("250 ok\r\n250 ok\r\n354 go\r\n");
    s = f.machine.on_written();
    s = f.machine.on_read(dot_reply);
    REQUIRE(f.listener.done.size() == 1);
    CHECK(d1.result == expected);
    CHECK(d1.reply + "\r\n" == dot_reply);
    // After a dot reply the server's transaction is over: no RSET needed.
    f.source.items = {&d2};
    s = f.machine.on_work();
    REQUIRE(s.what == step::kind::write);
    CHECK(s.bytes == envelope(d2));
  }
}

TEST_CASE("smtp dialog: MAIL rejected in a pipeline, then RSET", "[smtp][dialog]") {
  fixture f;
  delivery d1 = make("a@example.org"), d2 = make("b@example.org");
  f.source.items = {&d1, &d2};
  step s = f.handshake(ehlo_pipelining);
  s = f.machine.on_written();
  s = f.machine.on_read("553 5.7.1 sender rejected\r\n503 5.5.1 need MAIL\r\n");
  CHECK(f.listener.done.empty());  // DATA's reply is still due
  REQUIRE(s.what == step::kind::read);
  s = f.machine.on_read("503 5.5.1 need MAIL\r\n");
  REQUIRE(f.listener.done.size() == 1);
  CHECK(d1.result == outcome::permanent);
  CHECK(d1.reply == "553 5.7.1 sender rejected");
  REQUIRE(s.what == step::kind::write);
  CHECK(s.bytes == "RSET\r\n" + envelope(d2));
  s = f.machine.on_written();
  s = f.machine.on_read("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
  REQUIRE(s.what == step::kind::write);
  CHECK(s.bytes == d2.data + ".\r\n");
}

TEST_CASE("smtp dialog: RCPT rejected but 354 anyway sends an empty message", "[smtp][dialog]") {
  for (std::string dot_reply : {"554 5.5.1 no valid recipients\r\n", "250 2.0.0 queued\r\n"}) {
    fixture f;
    delivery d1 = make("nobody@example.org"), d2 = make("b@example.org");
    f.source.items = {&d1, &d2};
    step s = f.handshake(ehlo_pipelining);
    s = f.machine.on_written();
    s = f.machine.on_read("250 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n");
    REQUIRE(s.what == step::kind::write);
    CHECK(s.bytes == ".\r\n");  // no body, no next envelope riding along
    s = f.machine.on_written();
    REQUIRE(s.what == step::kind::read);
    CHECK(f.listener.done.empty());
    s = f.machine.on_read(dot_reply);
    REQUIRE(f.listener.done.size() == 1);
    CHECK(d1.result == outcome::permanent);
    CHECK(d1.reply == "550 5.1.1 no such user");
    REQUIRE(s.what == step::kind::write);
    CHECK(s.bytes == "RSET\r\n" + envelope(d2));
  }
}

TEST_CASE("smtp dialog: RCPT rejected, DATA refused as expected", "[smtp][dialog]") {
  fixture f;
  delivery d1 = make("a@example.org");
  f.source.items = {&d1};
  step s = f.handshake(ehlo_pipelining);
  s = f.machine.on_written();
  s = f.machine.on_read("250 ok\r\n451 4.3.0 try later\r\n554 5.5.1 no valid recipients\r\n");
  REQUIRE(f.listener.done.size() == 1);
  CHECK(d1.result == outcome::transient);  // the RCPT's reply decides, not DATA's
  CHECK(d1.reply == "451 4.3.0 try later");
  CHECK(s.what == step::kind::wait_for_work);
}

TEST_CASE("smtp dialog: 4xx and 5xx to DATA", "[smtp][dialog]") {
  for (auto [data_reply, expected] : {std::pair{"451 4.3.0 later\r\n", outcome::transient},
                                      std::pair{"554 5.7.1 no\r\n", outcome::permanent}}) {
    fixture f;
    delivery d1 = make("a@example.org");
    f.source.items = {&d1};
    step s = f.handshake(ehlo_pipelining);
    s = f.machine.on_written();
    s = f.machine.on_read(std::string("250 ok\r\n250 ok\r\n") + data_reply);
    REQUIRE(f.listener.done.size() == 1);
    CHECK(d1.result == expected);
  }
}

TEST_CASE("smtp dialog: 421 mid-pipeline", "[smtp][dialog]") {
  SECTION("as the reply to the dot: that message and the next envelope unsent (the relay went away)") {
    fixture f;
    delivery d1 = make("a@example.org"), d2 = make("b@example.org"), d3 = make("c@example.org");
    f.source.items = {&d1, &d2, &d3};
    step s = f.handshake(ehlo_pipelining);
    s = f.machine.on_written();
    s = f.machine.on_read("250 ok\r\n250 ok\r\n354 go\r\n");
    s = f.machine.on_written();
    s = f.machine.on_read("421 4.3.2 shutting down\r\n");
    CHECK(s.what == step::kind::close);
    CHECK(f.machine.close_reason() == error::service_closing);
    REQUIRE(f.listener.done.size() == 2);
    CHECK(d1.result == outcome::unsent);
    CHECK(d1.reply == "421 4.3.2 shutting down");
    CHECK(d2.result == outcome::unsent);
    CHECK(f.source.items.size() == 1);  // d3 never taken: stays with the pool
  }
  SECTION("after the dot was accepted, on the next MAIL") {
    fixture f;
    delivery d1 = make("a@example.org"), d2 = make("b@example.org");
    f.source.items = {&d1, &d2};
    step s = f.handshake(ehlo_pipelining);
    s = f.machine.on_written();
    s = f.machine.on_read("250 ok\r\n250 ok\r\n354 go\r\n");
    s = f.machine.on_written();
    s = f.machine.on_read("250 2.0.0 queued\r\n421 4.3.2 bye\r\n");
    CHECK(s.what == step::kind::close);
    CHECK(d1.result == outcome::accepted);
    CHECK(d2.result == outcome::unsent);
    CHECK(d2.reply == "421 4.3.2 bye");
  }
}

TEST_CASE("smtp dialog: connection lost before and after the dot", "[smtp][dialog]") {
  SECTION("after the dot: ambiguous; before: unsent") {
    fixture f;
    delivery d1 = make("a@example.org"), d2 = make("b@example.org");
    f.source.items = {&d1, &d2};
    step s = f.handshake(ehlo_pipelining);
    s = f.machine.on_written();
    s = f.machine.on_read("250 ok\r\n250 ok\r\n354 go\r\n");
    s = f.machine.on_written();
    s = f.machine.on_failure(error::connection_lost);
    CHECK(s.what == step::kind::close);
    REQUIRE(f.listener.done.size() == 2);
    CHECK(d1.result == outcome::ambiguous);
    CHECK(d2.result == outcome::unsent);
    CHECK(d1.reply.find("RFC 1047") != std::string::npos);
  }
  SECTION("timeout waiting for the dot reply: ambiguous") {
    fixture f;
    delivery d1 = make("a@example.org");
    f.source.items = {&d1};
    step s = f.handshake(ehlo_pipelining);
    s = f.machine.on_written();
    s = f.machine.on_read("250 ok\r\n250 ok\r\n354 go\r\n");
    s = f.machine.on_written();
    s = f.machine.on_failure(error::timeout);
    CHECK(d1.result == outcome::ambiguous);
    CHECK(f.machine.close_reason() == error::timeout);
  }
  SECTION("write failed before the dot's last byte: unsent") {
    fixture f;
    delivery d1 = make("a@example.org"), d2 = make("b@example.org");
    f.source.items = {&d1, &d2};
    step s = f.handshake(ehlo_pipelining);
    s = f.machine.on_written();
    s = f.machine.on_read("250 ok\r\n250 ok\r\n354 go\r\n");
    std::size_t dot_end = d1.data.size() + 3;
    s = f.machine.on_write_failed(error::connection_lost, dot_end - 1);
    CHECK(d1.result == outcome::unsent);
    CHECK(d2.result == outcome::unsent);
  }
  SECTION("write failed after the dot but within the next envelope: the first is ambiguous") {
    fixture f;
    delivery d1 = make("a@example.org"), d2 = make("b@example.org");
    f.source.items = {&d1, &d2};
    step s = f.handshake(ehlo_pipelining);
    s = f.machine.on_written();
    s = f.machine.on_read("250 ok\r\n250 ok\r\n354 go\r\n");
    s = f.machine.on_write_failed(error::connection_lost, d1.data.size() + 3);
    CHECK(d1.result == outcome::ambiguous);
    CHECK(d2.result == outcome::unsent);
  }
  SECTION("lost while waiting for the envelope replies: unsent") {
    fixture f;
    delivery d1 = make("a@example.org");
    f.source.items = {&d1};
    step s = f.handshake(ehlo_pipelining);
    s = f.machine.on_written();
    s = f.machine.on_read("250 ok\r\n");
    s = f.machine.on_failure(error::connection_lost);
    CHECK(d1.result == outcome::unsent);
  }
  SECTION("a decided failure keeps its reply when the connection dies") {
    fixture f;
    delivery d1 = make("a@example.org");
    f.source.items = {&d1};
    step s = f.handshake(ehlo_pipelining);
    s = f.machine.on_written();
    s = f.machine.on_read("250 ok\r\n550 5.1.1 unknown\r\n");
    s = f.machine.on_failure(error::connection_lost);
    CHECK(d1.result == outcome::permanent);
    CHECK(d1.reply == "550 5.1.1 unknown");
  }
}

TEST_CASE("smtp dialog: garbage from the server is a protocol violation", "[smtp][dialog]") {
  fixture f;
  delivery d1 = make("a@example.org");
  f.source.items = {&d1};
  step s = f.handshake(ehlo_pipelining);
  s = f.machine.on_written();
  s = f.machine.on_read("250 ok\r\n250 ok\r\n354 go\r\n");
  s = f.machine.on_written();
  s = f.machine.on_read("hello there\r\n");
  CHECK(s.what == step::kind::close);
  CHECK(f.machine.close_reason() == error::malformed_reply);
  CHECK(d1.result == outcome::ambiguous);
}

TEST_CASE("smtp dialog: a reply nobody asked for", "[smtp][dialog]") {
  fixture f;
  delivery d1 = make("a@example.org");
  f.source.items = {&d1};
  step s = f.handshake(ehlo_pipelining);
  s = f.machine.on_written();
  s = f.machine.on_read("250 ok\r\n250 ok\r\n354 go\r\n250 extra\r\n");
  CHECK(s.what == step::kind::close);
  CHECK(f.machine.close_reason() == error::unexpected_reply);
  CHECK(d1.result == outcome::unsent);  // the body was never written
}

TEST_CASE("smtp dialog: lock-step without PIPELINING, RCPT failure costs an RSET", "[smtp][dialog]") {
  fixture f;
  delivery d1 = make("a@example.org"), d2 = make("b@example.org");
  f.source.items = {&d1, &d2};
  step s = f.handshake(ehlo_plain);
  CHECK_FALSE(f.machine.caps().pipelining);
  REQUIRE(s.bytes == "MAIL FROM:<from@example.org>\r\n");
  s = f.machine.on_written();
  s = f.machine.on_read("250 ok\r\n");
  REQUIRE(s.bytes == "RCPT TO:<a@example.org>\r\n");
  s = f.machine.on_written();
  s = f.machine.on_read("550 5.1.1 unknown\r\n");
  REQUIRE(f.listener.done.size() == 1);
  CHECK(d1.result == outcome::permanent);
  REQUIRE(s.what == step::kind::write);
  CHECK(s.bytes == "RSET\r\n");
  s = f.machine.on_written();
  s = f.machine.on_read("250 ok\r\n");
  REQUIRE(s.what == step::kind::write);
  CHECK(s.bytes == "MAIL FROM:<from@example.org>\r\n");
  s = f.machine.on_written();
  s = f.machine.on_read("250 ok\r\n");
  s = f.machine.on_written();
  s = f.machine.on_read("250 ok\r\n");
  REQUIRE(s.bytes == "DATA\r\n");
  s = f.machine.on_written();
  s = f.machine.on_read("354 go\r\n");
  CHECK(s.bytes == d2.data + ".\r\n");  // no next envelope riding along without PIPELINING
  s = f.machine.on_written();
  s = f.machine.on_read("250 queued\r\n");
  CHECK(d2.result == outcome::accepted);
}

TEST_CASE("smtp dialog: dot-stuffing and the final CRLF", "[smtp][dialog]") {
  struct sample {
    std::string data, wire;
  };
  for (const sample& c : std::vector<sample>{
           {".starts\r\nx\r\n", "..starts\r\nx\r\n.\r\n"},
           {"a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
           {"a\r\n..two\r\n", "a\r\n...two\r\n.\r\n"},
           {"no final crlf", "no final crlf\r\n.\r\n"},
           {"a\r\n.", "a\r\n..\r\n.\r\n"},
           {"", "\r\n.\r\n"},
           {"mid.dot\r\n", "mid.dot\r\n.\r\n"},
       }) {
    fixture f;
    delivery d = make("a@example.org", c.data);
    f.source.items = {&d};
    step s = f.handshake(ehlo_pipelining);
    s = f.machine.on_written();
    s = f.machine.on_read("250 ok\r\n250 ok\r\n354 go\r\n");
    REQUIRE(s.what == step::kind::write);
    CHECK(s.bytes == c.wire);
  }
}

TEST_CASE("smtp dialog: SIZE is honoured and announced", "[smtp][dialog]") {
  fixture f;
  std::string big_body(202, 'x');
  big_body.replace(200, 2, "\r\n");
  delivery big = make("a@example.org", big_body);
  delivery small = make("b@example.org", "tiny\r\n");
  f.source.items = {&big, &small};
  step s = f.handshake("250-mx\r\n250-PIPELINING\r\n250 SIZE 100\r\n");
  REQUIRE(f.listener.done.size() == 1);
  CHECK(big.result == outcome::permanent);
  CHECK(big.reply.rfind("552 5.3.4 local:", 0) == 0);
  REQUIRE(s.what == step::kind::write);
  CHECK(s.bytes == "MAIL FROM:<from@example.org> SIZE=6\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
}

TEST_CASE("smtp dialog: 8-bit bodies announce BODY=8BITMIME", "[smtp][dialog]") {
  fixture f;
  delivery d = make("a@example.org", "Subject: \xc3\xa6\xc3\xb8\xc3\xa5\r\n\r\nhei\r\n");
  f.source.items = {&d};
  step s = f.handshake(ehlo_pipelining);
  REQUIRE(s.what == step::kind::write);
  CHECK(s.bytes.find("MAIL FROM:<from@example.org> BODY=8BITMIME\r\n") == 0);
}

TEST_CASE("smtp dialog: addresses that could inject commands are refused locally", "[smtp][dialog]") {
  fixture f;
  delivery bad1 = make("a@example.org>\r\nRCPT TO:<b@example.org");
  delivery bad2 = make("");
  delivery bad3 = make("\xc3\xa6@example.org");  // needs SMTPUTF8, which is not advertised
  delivery good = make("ok@example.org");
  f.source.items = {&bad1, &bad2, &bad3, &good};
  step s = f.handshake(ehlo_pipelining);
  REQUIRE(f.listener.done.size() == 3);
  CHECK(bad1.result == outcome::permanent);
  CHECK(bad2.result == outcome::permanent);
  CHECK(bad3.result == outcome::permanent);
  CHECK(s.bytes == envelope(good));
}

TEST_CASE("smtp dialog: QUIT after max messages and on request", "[smtp][dialog]") {
  SECTION("max messages per connection") {
    fake_source source;
    recorder listener;
    dialog machine{options("c", 1), source, listener};
    delivery d1 = make("a@example.org"), d2 = make("b@example.org");
    source.items = {&d1, &d2};
    step s = machine.on_connected();
    s = machine.on_read("220 hi\r\n");
    s = machine.on_written();
    s = machine.on_read(ehlo_pipelining);
    s = machine.on_written();
    s = machine.on_read("250 ok\r\n250 ok\r\n354 go\r\n");
    CHECK(s.bytes == d1.data + ".\r\n");  // d2 does not ride along: this connection is used up
    s = machine.on_written();
    s = machine.on_read("250 queued\r\n");
    REQUIRE(s.what == step::kind::write);
    CHECK(s.bytes == "QUIT\r\n");
    s = machine.on_written();
    s = machine.on_read("221 bye\r\n");
    CHECK(s.what == step::kind::close);
    CHECK_FALSE(machine.close_reason());
    CHECK(source.items.size() == 1);
  }
  SECTION("idle, asked to quit") {
    fixture f;
    step s = f.handshake(ehlo_pipelining);
    REQUIRE(s.what == step::kind::wait_for_work);
    s = f.machine.on_quit();
    CHECK(s.bytes == "QUIT\r\n");
    s = f.machine.on_written();
    s = f.machine.on_failure(error::connection_lost);  // a server that just hangs up
    CHECK(s.what == step::kind::close);
  }
  SECTION("a new connection starts over") {
    fixture f;
    f.handshake(ehlo_pipelining);
    f.machine.on_failure(error::connection_lost);
    step s = f.machine.on_connected();
    CHECK(s.what == step::kind::read);
    CHECK_FALSE(f.machine.established());
    CHECK_FALSE(f.machine.close_reason());
  }
}
