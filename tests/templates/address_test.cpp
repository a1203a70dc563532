#include <catch2/catch.hpp>

#include "templates/address.hpp"
#include "templates/utf8.hpp"

using namespace budstikke::templates;

TEST_CASE("templates: e-mail address checks without SMTPUTF8") {
  CHECK(email_address_problem("kari.nordmann+lønn@avd1.example").has_value());  // non-ASCII
  CHECK_FALSE(email_address_problem("kari.nordmann+tariff@avd1.example"));
  CHECK_FALSE(email_address_problem("\"kari.nordmann\"@avd1.example"));  // the quotes change nothing
  CHECK(*email_address_problem("") == "empty address");
  CHECK(*email_address_problem("kari") == "address has no @");
  CHECK(*email_address_problem("kari@localhost") == "invalid domain");
  CHECK(*email_address_problem(".kari@a.no") == "invalid local part");
  CHECK(*email_address_problem("ka..ri@a.no") == "invalid local part");
  CHECK(*email_address_problem("kari@-a.no") == "invalid domain");
  CHECK(*email_address_problem("a b@a.no") == "invalid local part");
  CHECK(*email_address_problem("a@b.no\r\nRCPT TO:<x@y.no>") == "control character in address");
  CHECK(email_address_problem("kåre@a.no")->find("non-ASCII") != std::string_view::npos);
  CHECK(email_address_problem("kari@blåbær.no")->find("non-ASCII") != std::string_view::npos);
  CHECK(*email_address_problem(std::string(250, 'a') + "@b.no") == "address longer than 254 octets");
}

TEST_CASE("templates: IDN domains are converted to their xn-- form") {
  std::string out;
  bool utf8 = true;
  REQUIRE_FALSE(prepare_email_address("kari@blåbær.no", out, utf8));
  CHECK(out == "kari@xn--blbr-roah.no");
  CHECK_FALSE(utf8);
  REQUIRE_FALSE(prepare_email_address("ola@Tromsø.Example", out, utf8));
  CHECK(out == "ola@xn--troms-zua.example");  // UTS #46 maps case
  REQUIRE_FALSE(prepare_email_address("per@xn--blbr-roah.no", out, utf8));
  CHECK(out == "per@xn--blbr-roah.no");
  REQUIRE_FALSE(prepare_email_address("kari.nordmann+tariff@avd1.example", out, utf8));
  CHECK(out == "kari.nordmann+tariff@avd1.example");
  CHECK_FALSE(utf8);
}

TEST_CASE("templates: a non-ASCII local part is usable only with SMTPUTF8") {
  std::string out;
  bool utf8 = false;
  REQUIRE_FALSE(prepare_email_address("kåre@avd1.example", out, utf8));
  CHECK(utf8);
  CHECK(out == "kåre@avd1.example");
  REQUIRE_FALSE(prepare_email_address("åse@blåbær.no", out, utf8));
  CHECK(utf8);
  CHECK(out == "åse@xn--blbr-roah.no");
  REQUIRE_FALSE(prepare_email_address("\"åse.ødegård\"@avd1.example", out, utf8));
  CHECK(utf8);
}

TEST_CASE("templates: a quoted local part that needs its quotes is refused, with the reason") {
  // The To: header cannot carry the blank the envelope keeps: the two would name different mailboxes.
  const std::string_view reason =
      "quoted local part with characters that need quoting (blanks, specials, escapes): not supported";
  std::string out;
  bool utf8 = false;
  for (const char* address : {"\"a b\"@example.com", "\"kari nordmann\"@avd1.example", "\"a<b>\"@avd1.example",
                              "\"a,b\"@avd1.example", "\"a\\\"b\"@avd1.example", "\"a@b\"@avd1.example"}) {
    INFO(address);
    CHECK(email_address_problem(address) == reason);
    CHECK(prepare_email_address(address, out, utf8) == reason);
  }
  CHECK(prepare_email_address("\"åse ødegård\"@avd1.example", out, utf8) == reason);
  CHECK(*email_address_problem("\"\"@avd1.example") == "invalid local part");
  CHECK(*email_address_problem("\"a\tb\"@avd1.example") == "control character in address");
  REQUIRE_FALSE(prepare_email_address("\"kari+lønn\"@avd1.example", out, utf8));
  CHECK(out == "\"kari+lønn\"@avd1.example");
}

TEST_CASE("templates: prepared addresses keep the reasons for bad ones") {
  std::string out;
  bool utf8 = false;
  CHECK(*prepare_email_address("", out, utf8) == "empty address");
  CHECK(*prepare_email_address("ikke-en-adresse", out, utf8) == "address has no @");
  CHECK(*prepare_email_address("a@b.no\r\nRCPT TO:<x@y.no>", out, utf8) == "control character in address");
  CHECK(*prepare_email_address("kå..re@a.no", out, utf8) == "invalid local part");
  CHECK(*prepare_email_address("kari@localhost", out, utf8) == "invalid domain");
  CHECK(*prepare_email_address("kari@blå bær.no", out, utf8) != "");
  CHECK(*prepare_email_address("kari@\xC3\x28.no", out, utf8) == "address is not valid UTF-8");
  CHECK(*prepare_email_address("kari@☃.no", out, utf8) == "invalid internationalised domain (IDNA2008)");  // a symbol
}

TEST_CASE("templates: UTF-8 validation refuses overlongs, surrogates and truncation") {
  CHECK(utf8::valid("Æøå — 🎉"));
  CHECK_FALSE(utf8::valid("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(utf8::valid("\xED\xA0\x80"));      // surrogate
  CHECK_FALSE(utf8::valid("\xE2\x82"));          // truncated
  CHECK_FALSE(utf8::valid("\xF4\x90\x80\x80"));  // past U+10FFFF
  CHECK_FALSE(utf8::valid("\x80"));              // stray continuation
}

TEST_CASE("a sender is read as address, Name <address> or \"Quoted, Name\" <address>") {
  sender s;
  REQUIRE_FALSE(parse_sender("post@forbundet.example", s));
  CHECK(s.name.empty());
  CHECK(s.address == "post@forbundet.example");

  REQUIRE_FALSE(parse_sender("  Forbundet <post@forbundet.example> ", s));
  CHECK(s.name == "Forbundet");
  CHECK(s.address == "post@forbundet.example");

  REQUIRE_FALSE(parse_sender("Fagforbundet Østfold <post@forbundet.example>", s));
  CHECK(s.name == "Fagforbundet Østfold");

  REQUIRE_FALSE(parse_sender(R"("Forbundet, avd. 1 \"Sentrum\"" <post@forbundet.example>)", s));
  CHECK(s.name == R"(Forbundet, avd. 1 "Sentrum")");
  CHECK(s.address == "post@forbundet.example");

  REQUIRE_FALSE(parse_sender("<post@forbundet.example>", s));
  CHECK(s.name.empty());
  CHECK(s.address == "post@forbundet.example");
}

TEST_CASE("a sender that cannot be read says what to type") {
  sender s;
  auto problem = parse_sender("Forbundet post@forbundet.example", s);
  REQUIRE(problem);
  CHECK_THAT(*problem, Catch::Contains("Name <address>"));
  problem = parse_sender("Forbundet <post@forbundet.example", s);
  REQUIRE(problem);
  CHECK_THAT(*problem, Catch::Contains("Name <address>"));
  problem = parse_sender("Forbundet post@forbundet.example>", s);
  REQUIRE(problem);
  CHECK_THAT(*problem, Catch::Contains("Name <address>"));
  problem = parse_sender("Forbundet <post@>", s);
  REQUIRE(problem);
  CHECK_THAT(*problem, Catch::Contains("invalid domain"));
  problem = parse_sender(R"("Forbundet <post@forbundet.example>)", s);
  REQUIRE(problem);
  CHECK_THAT(*problem, Catch::Contains("unbalanced"));
  problem = parse_sender("Forbundet\r\nBcc: x@y.example <post@forbundet.example>", s);
  REQUIRE(problem);
  CHECK_THAT(*problem, Catch::Contains("control character"));
  CHECK(parse_sender("", s));
}
