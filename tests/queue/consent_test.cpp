#include <catch2/catch.hpp>

#include "queue/consent.hpp"

using namespace budstikke::queue;

namespace {

reply_ptr r(std::string_view bytes) {
  reply_parser p;
  REQUIRE(p.feed(bytes.data(), bytes.size()));
  bool err = false;
  auto reply = p.next(err);
  REQUIRE(reply);
  return reply;
}

std::string bulk(std::string_view s) { return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n"; }

}  // namespace

TEST_CASE("consent: keys and fields") {
  keys k("bs:");
  CHECK(consent_key(k, "M42") == "bs:consent:{M42}");
  CHECK(suppression_key(k, channel::sms) == "bs:suppressed:sms");
  CHECK(consent_field(channel::email, "newsletter") == "email:newsletter");
  CHECK(channel_wide_consent_field(channel::sms) == "sms:*");
  CHECK(suppression_member(channel::email, "Kari.Nordmann@Avd1.Example") == "kari.nordmann@avd1.example");
  CHECK(suppression_member(channel::sms, "+4791234567") == "+4791234567");
}

TEST_CASE("consent: records parse and format") {
  auto c = parse_consent("withdrawn|2026-11-23T10:00:00Z|unsubscribe-link");
  REQUIRE(c);
  CHECK_FALSE(c->granted);
  CHECK(c->at == "2026-11-23T10:00:00Z");
  CHECK(c->source == "unsubscribe-link");
  CHECK(parse_consent("granted")->granted);
  CHECK_FALSE(parse_consent("yes|x|y"));
  CHECK(format_consent(true, "t", "portal") == "granted|t|portal");
}

TEST_CASE("consent: the send-time decision") {
  auto nil = r("$-1\r\n");
  auto granted = r(bulk("granted|2026-01-01T00:00:00Z|portal"));
  auto withdrawn = r(bulk("withdrawn|2026-11-23T10:00:00Z|unsubscribe-link"));
  auto suppressed = r(bulk("hard-bounce|2026-11-01T00:00:00Z"));
  auto junk = r(bulk("maybe"));

  // Required: a grant is needed.
  CHECK_FALSE(consent_problem(granted.get(), nil.get(), nil.get(), true, true));
  CHECK(*consent_problem(nil.get(), nil.get(), nil.get(), true, true) == "no consent");
  CHECK(*consent_problem(nil.get(), nil.get(), nil.get(), true, false) == "no member id to check consent against");
  // The channel-wide record counts when there is no specific one; the specific one wins.
  CHECK_FALSE(consent_problem(nil.get(), granted.get(), nil.get(), true, true));
  CHECK(consent_problem(withdrawn.get(), granted.get(), nil.get(), true, true)->rfind("consent withdrawn", 0) == 0);
  CHECK_FALSE(consent_problem(granted.get(), withdrawn.get(), nil.get(), true, true));
  // Not required: only an explicit withdrawal stops it.
  CHECK_FALSE(consent_problem(nil.get(), nil.get(), nil.get(), false, false));
  CHECK(*consent_problem(withdrawn.get(), nil.get(), nil.get(), false, true) ==
        "consent withdrawn 2026-11-23T10:00:00Z (unsubscribe-link)");
  // Suppression beats everything.
  CHECK(*consent_problem(granted.get(), nil.get(), suppressed.get(), false, true) == "suppressed: hard-bounce");
  CHECK(*consent_problem(junk.get(), nil.get(), nil.get(), true, true) == "consent record is malformed");
}

TEST_CASE("consent: one message's lookup is two pipelined commands") {
  request req;
  append_consent_lookup(req, keys(), channel::email, "newsletter", "M1", "Kari@A.no");
  CHECK(req.commands() == 2);
  CHECK(req.payload() ==
        "*4\r\n$5\r\nHMGET\r\n$22\r\nbudstikke:consent:{M1}\r\n$16\r\nemail:newsletter\r\n$7\r\nemail:*\r\n"
        "*3\r\n$4\r\nHGET\r\n$26\r\nbudstikke:suppressed:email\r\n$9\r\nkari@a.no\r\n");
}

TEST_CASE("consent: suppression entries parse and format; a grant is one MULTI that reads what it replaces") {
  CHECK(format_suppression("hard-bounce", "2026-11-20T08:00:00Z") == "hard-bounce|2026-11-20T08:00:00Z");
  auto e = parse_suppression("hard-bounce|2026-11-20T08:00:00Z");
  CHECK(e.reason == "hard-bounce");
  CHECK(e.at == "2026-11-20T08:00:00Z");
  auto bare = parse_suppression("invalid");  // written by hand, without a time
  CHECK(bare.reason == "invalid");
  CHECK(bare.at.empty());
  // The engine's reason names the entry's reason only.
  auto s = r(bulk("complaint|2026-11-20T08:00:00Z"));
  CHECK(*consent_problem(nullptr, nullptr, s.get(), false, true) == "suppressed: complaint");

  request req;
  append_grant_consent(req, keys("bs:"), "M7", "email:newsletter", "granted|2026-12-02T10:00:00Z|portal");
  CHECK(req.commands() == 4);
  const std::string& wire = req.payload();
  CHECK(wire.starts_with("*1\r\n$5\r\nMULTI\r\n*3\r\n$4\r\nHGET\r\n$15\r\nbs:consent:{M7}\r\n$16\r\nemail:newsletter\r\n"
                         "*4\r\n$4\r\nHSET\r\n"));
  CHECK(wire.ends_with("*1\r\n$4\r\nEXEC\r\n"));
}
