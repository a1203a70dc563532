// The client dialog's STARTTLS and AUTH states, byte by byte, with no socket.
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

constexpr std::string_view ehlo_starttls =
    "250-relay.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 ENHANCEDSTATUSCODES\r\n";
constexpr std::string_view ehlo_after_tls =
    "250-relay.example\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n";

struct fixture {
  explicit fixture(dialog_options opt) : machine(std::move(opt), source, listener) {}
  fake_source source;
  recorder listener;
  dialog machine;
  std::string written;  // everything the client wrote, to prove what never went out

  step write_ok(step s) {
    REQUIRE(s.what == step::kind::write);
    written.append(s.bytes);
    return machine.on_written();
  }
  // Greeting and first EHLO; returns the step after the EHLO reply.
  step greet(std::string_view ehlo_reply, connection_security sec = {}) {
    step s = machine.on_connected(sec);
    REQUIRE(s.what == step::kind::read);
    s = machine.on_read("220 relay.example ESMTP\r\n");
    REQUIRE(s.bytes == "EHLO client.example\r\n");
    s = write_ok(s);
    REQUIRE(s.what == step::kind::read);
    return machine.on_read(ehlo_reply);
  }
};

dialog_options tls_options(std::string user = "", std::string password = "") {
  dialog_options o;
  o.helo_name = "client.example";
  o.require_tls = true;
  o.username = std::move(user);
  o.password = std::move(password);
  return o;
}

bool contains(const std::string& s, std::string_view what) { return s.find(what) != std::string::npos; }

}  // namespace

TEST_CASE("smtp dialog tls: STARTTLS, then EHLO again, then the transaction", "[smtp][dialog][tls]") {
  fixture f(tls_options());
  delivery d = make("a@example.org");
  f.source.items.push_back(&d);
  step s = f.greet(ehlo_starttls);
  REQUIRE(s.what == step::kind::write);
  CHECK(s.bytes == "STARTTLS\r\n");
  CHECK_FALSE(f.machine.established());
  s = f.write_ok(s);
  s = f.machine.on_read("220 2.0.0 go ahead\r\n");
  REQUIRE(s.what == step::kind::start_tls);
  s = f.machine.on_tls_started();
  CHECK(f.machine.tls_active());
  REQUIRE(s.what == step::kind::write);
  CHECK(s.bytes == "EHLO client.example\r\n");
  CHECK_FALSE(f.machine.caps().starttls);  // forgotten with the clear-text part
  s = f.write_ok(s);
  s = f.machine.on_read("250-relay.example\r\n250 PIPELINING\r\n");
  CHECK(f.machine.established());
  REQUIRE(s.what == step::kind::write);
  CHECK(s.bytes == "MAIL FROM:<from@example.org>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
}

TEST_CASE("smtp dialog tls: bytes injected after the STARTTLS 220 are never read as replies", "[smtp][dialog][tls]") {
  fixture f(tls_options());
  delivery d = make("a@example.org");
  f.source.items.push_back(&d);
  step s = f.write_ok(f.greet(ehlo_starttls));
  // A man in the middle appends replies for commands the client has not sent yet.
  s = f.machine.on_read("220 ready\r\n250-evil\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n354 go\r\n");
  REQUIRE(s.what == step::kind::start_tls);
  CHECK(f.machine.close_reason() == std::error_code());
  s = f.machine.on_tls_started();
  REQUIRE(s.bytes == "EHLO client.example\r\n");
  s = f.write_ok(s);
  REQUIRE(s.what == step::kind::read);
  CHECK_FALSE(f.machine.established());  // the injected 250 did not count as the EHLO reply
  s = f.machine.on_read("250-relay.example\r\n250 PIPELINING\r\n");
  REQUIRE(s.what == step::kind::write);
  s = f.write_ok(s);
  // The envelope's replies must come now, over TLS: the injected ones were dropped.
  s = f.machine.on_read("250 ok\r\n250 ok\r\n354 go\r\n");
  REQUIRE(s.what == step::kind::write);
  CHECK(contains(std::string(s.bytes), "hello\r\n.\r\n"));
  CHECK(f.listener.done.empty());
}

TEST_CASE("smtp dialog tls: bytes injected byte by byte after the 220 are dropped too", "[smtp][dialog][tls]") {
  fixture f(tls_options());
  step s = f.write_ok(f.greet(ehlo_starttls));
  std::string_view in = "220 ready\r\n250 injected\r\n";
  for (std::size_t i = 0; i < in.size(); ++i) {
    s = f.machine.on_read(in.substr(i, 1));
    if (s.what == step::kind::start_tls) break;
  }
  REQUIRE(s.what == step::kind::start_tls);
  // The I/O layer does not call on_read again before the handshake; later bytes come over TLS.
  s = f.machine.on_tls_started();
  CHECK(s.bytes == "EHLO client.example\r\n");
}

TEST_CASE("smtp dialog tls: stripped STARTTLS sends no MAIL in clear text", "[smtp][dialog][tls]") {
  for (std::string_view ehlo : {std::string_view("250-relay.example\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n"),
                                std::string_view("250 relay.example\r\n")}) {
    fixture f(tls_options("user", "secret"));
    delivery d = make("a@example.org");
    f.source.items.push_back(&d);
    step s = f.greet(ehlo);
    CHECK(s.what == step::kind::close);
    CHECK(f.machine.close_reason() == error::starttls_unavailable);
    CHECK_FALSE(f.machine.established());
    CHECK_FALSE(contains(f.written, "MAIL"));
    CHECK_FALSE(contains(f.written, "AUTH"));
    CHECK(f.source.items.size() == 1);  // untouched: the pool hands it back
  }
}

TEST_CASE("smtp dialog tls: HELO-only relay when TLS is required", "[smtp][dialog][tls]") {
  fixture f(tls_options());
  step s = f.greet("500 what\r\n");
  REQUIRE(s.bytes == "HELO client.example\r\n");
  s = f.write_ok(s);
  s = f.machine.on_read("250 hi\r\n");
  CHECK(s.what == step::kind::close);
  CHECK(f.machine.close_reason() == error::starttls_unavailable);
}

TEST_CASE("smtp dialog tls: STARTTLS refused, 421 to STARTTLS, failed handshake", "[smtp][dialog][tls]") {
  {
    fixture f(tls_options());
    step s = f.write_ok(f.greet(ehlo_starttls));
    s = f.machine.on_read("454 4.7.0 TLS not available\r\n");
    CHECK(s.what == step::kind::close);
    CHECK(f.machine.close_reason() == error::starttls_unavailable);
  }
  {
    fixture f(tls_options());
    step s = f.write_ok(f.greet(ehlo_starttls));
    s = f.machine.on_read("421 4.3.2 shutting down\r\n");
    CHECK(s.what == step::kind::close);
    CHECK(f.machine.close_reason() == error::service_closing);
  }
  {
    fixture f(tls_options("user", "secret"));
    delivery d = make("a@example.org");
    f.source.items.push_back(&d);
    step s = f.write_ok(f.greet(ehlo_starttls));
    s = f.machine.on_read("220 go\r\n");
    REQUIRE(s.what == step::kind::start_tls);
    s = f.machine.on_failure(error::tls_failed);  // e.g. the certificate did not verify
    CHECK(s.what == step::kind::close);
    CHECK(f.machine.close_reason() == error::tls_failed);
    CHECK_FALSE(contains(f.written, "AUTH"));
    CHECK_FALSE(contains(f.written, "MAIL"));
    CHECK(f.source.items.size() == 1);
  }
}

TEST_CASE("smtp dialog tls: implicit TLS needs no STARTTLS", "[smtp][dialog][tls]") {
  fixture f(tls_options());
  step s = f.greet("250-relay.example\r\n250 PIPELINING\r\n", {true, false});
  CHECK(s.what == step::kind::wait_for_work);
  CHECK(f.machine.established());
  CHECK(f.machine.tls_active());
}

TEST_CASE("smtp dialog auth: PLAIN over TLS", "[smtp][dialog][auth]") {
  fixture f(tls_options("user", "pass"));
  delivery d = make("a@example.org");
  f.source.items.push_back(&d);
  step s = f.greet(ehlo_after_tls, {true, false});
  REQUIRE(s.what == step::kind::write);
  CHECK(s.bytes == "AUTH PLAIN AHVzZXIAcGFzcw==\r\n");  // base64("\0user\0pass")
  s = f.write_ok(s);
  CHECK_FALSE(f.machine.established());
  s = f.machine.on_read("235 2.7.0 Authentication successful\r\n");
  CHECK(f.machine.established());
  REQUIRE(s.what == step::kind::write);
  CHECK(s.bytes.substr(0, 10) == "MAIL FROM:");
}

TEST_CASE("smtp dialog auth: LOGIN when PLAIN is not offered", "[smtp][dialog][auth]") {
  fixture f(tls_options("user", "pass"));
  step s = f.greet("250-relay.example\r\n250-AUTH LOGIN CRAM-MD5\r\n250 PIPELINING\r\n", {true, false});
  REQUIRE(s.bytes == "AUTH LOGIN\r\n");
  s = f.write_ok(s);
  s = f.machine.on_read("334 VXNlcm5hbWU6\r\n");
  REQUIRE(s.bytes == "dXNlcg==\r\n");
  s = f.write_ok(s);
  s = f.machine.on_read("334 UGFzc3dvcmQ6\r\n");
  REQUIRE(s.bytes == "cGFzcw==\r\n");
  s = f.write_ok(s);
  s = f.machine.on_read("235 2.7.0 ok\r\n");
  CHECK(s.what == step::kind::wait_for_work);
  CHECK(f.machine.established());
}

TEST_CASE("smtp dialog auth: 535 makes the connection unusable, no MAIL", "[smtp][dialog][auth]") {
  fixture f(tls_options("user", "wrong"));
  delivery d = make("a@example.org");
  f.source.items.push_back(&d);
  step s = f.write_ok(f.greet(ehlo_after_tls, {true, false}));
  s = f.machine.on_read("535 5.7.8 Error: authentication failed\r\n");
  CHECK(s.what == step::kind::close);
  CHECK(f.machine.close_reason() == error::auth_failed);
  CHECK_FALSE(contains(f.written, "MAIL"));
  CHECK(f.source.items.size() == 1);
  CHECK(f.listener.done.empty());
}

TEST_CASE("smtp dialog auth: LOGIN refused at the user name", "[smtp][dialog][auth]") {
  fixture f(tls_options("user", "pass"));
  step s = f.write_ok(f.greet("250-relay.example\r\n250 AUTH LOGIN\r\n", {true, false}));
  s = f.machine.on_read("504 5.5.4 no\r\n");
  CHECK(s.what == step::kind::close);
  CHECK(f.machine.close_reason() == error::auth_failed);
}

TEST_CASE("smtp dialog auth: never in clear text unless allowed", "[smtp][dialog][auth]") {
  dialog_options o;
  o.helo_name = "client.example";
  o.username = "user";
  o.password = "pass";
  {
    fixture f(o);
    step s = f.greet(ehlo_after_tls);  // offers AUTH, but the connection is clear text
    CHECK(s.what == step::kind::close);
    CHECK(f.machine.close_reason() == error::auth_requires_tls);
    CHECK_FALSE(contains(f.written, "AUTH"));
  }
  {
    fixture f(o);
    step s = f.greet(ehlo_after_tls, {false, true});  // a loopback relay, allowed by config
    CHECK(s.bytes == "AUTH PLAIN AHVzZXIAcGFzcw==\r\n");
  }
  {
    fixture f(o);
    step s = f.greet("250-relay.example\r\n250 AUTH CRAM-MD5 XOAUTH2\r\n", {true, false});
    CHECK(s.what == step::kind::close);
    CHECK(f.machine.close_reason() == error::auth_unavailable);
  }
  {
    fixture f(o);
    step s = f.greet("250-relay.example\r\n250 PIPELINING\r\n", {true, false});
    CHECK(f.machine.close_reason() == error::auth_unavailable);
    CHECK(s.what == step::kind::close);
  }
}

TEST_CASE("smtp dialog auth: 421 during AUTH", "[smtp][dialog][auth]") {
  fixture f(tls_options("user", "pass"));
  step s = f.write_ok(f.greet(ehlo_after_tls, {true, false}));
  s = f.machine.on_read("421 4.3.2 bye\r\n");
  CHECK(s.what == step::kind::close);
  CHECK(f.machine.close_reason() == error::service_closing);
}

TEST_CASE("smtp dialog: a delivery that needs SMTPUTF8", "[smtp][dialog]") {
  dialog_options o;
  o.helo_name = "client.example";
  {
    fixture f(o);
    delivery d = make("kari@example.org");
    d.needs_smtputf8 = true;
    f.source.items.push_back(&d);
    step s = f.greet("250-relay.example\r\n250 PIPELINING\r\n");
    CHECK(s.what == step::kind::wait_for_work);
    REQUIRE(f.listener.done.size() == 1);
    CHECK(d.result == outcome::permanent);
    CHECK(d.reply.find("local:") != std::string::npos);
    CHECK(d.reply.find("SMTPUTF8") != std::string::npos);
    CHECK_FALSE(contains(f.written, "MAIL"));
  }
  {
    fixture f(o);
    delivery d = make("kari@example.org");
    d.needs_smtputf8 = true;
    delivery plain = make("ola@example.org");
    f.source.items.push_back(&d);
    f.source.items.push_back(&plain);
    step s = f.greet("250-relay.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
    REQUIRE(s.what == step::kind::write);
    CHECK(s.bytes == "MAIL FROM:<from@example.org> SMTPUTF8\r\nRCPT TO:<kari@example.org>\r\nDATA\r\n");
    s = f.write_ok(s);
    s = f.machine.on_read("250 ok\r\n250 ok\r\n354 go\r\n");
    REQUIRE(s.what == step::kind::write);
    // The next envelope rides with the dot and asks for nothing it does not need.
    CHECK(contains(std::string(s.bytes), ".\r\nMAIL FROM:<from@example.org>\r\nRCPT TO:<ola@example.org>\r\n"));
  }
}
