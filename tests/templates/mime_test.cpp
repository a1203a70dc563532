#include "templates/mime.hpp"

#include <catch2/catch.hpp>

#include "tests/templates/mime_reader.hpp"

#include <array>
#include <chrono>
#include <string>
#include <vector>

namespace tpl = budstikke::templates;
using namespace std::string_literals;
using namespace budstikke::testing::mime;

namespace {

// 2023-11-14T22:13:20Z, a Tuesday.
const auto test_date = std::chrono::system_clock::time_point{std::chrono::seconds{1700000000}};

tpl::email_content sample() {
  tpl::email_content c;
  c.from = {"Fagforbundet", "post@budstikke.example"};
  c.to = {"Kari Nordmann", "kari@example.org"};
  c.subject = "Tariff result";
  c.text = "Hello Kari\n";
  c.message_id = "c42.1700000000000-0.5f3a@budstikke.example";
  c.date = test_date;
  return c;
}

std::string build(const tpl::email_content& c) {
  std::string out;
  tpl::build_email(c, out);
  return out;
}

std::string qp(std::string_view body) {
  std::string out;
  tpl::append_quoted_printable(body, out);
  return out;
}


}  // namespace

TEST_CASE("mime builds an ASCII text message byte for byte", "[templates][mime]") {
  const std::array extra = {tpl::header_field{"X-Budstikke-Campaign", "c42"},
                            tpl::header_field{"List-Unsubscribe", "<https://budstikke.example/u/abc>"}};
  auto c = sample();
  c.extra_headers = extra;
  std::string out = "previous;";
  tpl::build_email(c, out);
  CHECK(out ==
        "previous;"
        "From: Fagforbundet <post@budstikke.example>\r\n"
        "To: Kari Nordmann <kari@example.org>\r\n"
        "Subject: Tariff result\r\n"
        "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
        "Message-ID: <c42.1700000000000-0.5f3a@budstikke.example>\r\n"
        "X-Budstikke-Campaign: c42\r\n"
        "List-Unsubscribe: <https://budstikke.example/u/abc>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "Hello Kari\r\n"s);
}

TEST_CASE("mime dates are RFC 5322 in UTC", "[templates][mime]") {
  auto c = sample();
  c.date = std::chrono::system_clock::time_point{std::chrono::seconds{951782400 + 3661}};  // 2000-02-29 01:01:01
  CHECK(header(build(c), "Date") == "Tue, 29 Feb 2000 01:01:01 +0000");
  c.date = std::chrono::system_clock::time_point{};
  CHECK(header(build(c), "Date") == "Thu, 01 Jan 1970 00:00:00 +0000");
}

TEST_CASE("mime non-ASCII subject and names become encoded words", "[templates][mime]") {
  auto c = sample();
  c.subject = "æøå";
  c.to = {"Åse Ødegård", "ase@example.org"};
  const auto m = build(c);
  check_lines(m);
  CHECK(m.find("\r\nSubject: =?utf-8?B?w6bDuMOl?=\r\n") != std::string::npos);
  CHECK(header(m, "To") == "=?utf-8?B?w4VzZSDDmGRlZ8OlcmQ=?= <ase@example.org>");
  CHECK(decode_words(header(m, "To")) == "Åse Ødegård");
}

TEST_CASE("mime ASCII display names are quoted when they hold specials", "[templates][mime]") {
  auto c = sample();
  c.to = {"Nordmann, Kari \"KN\"", "kari@example.org"};
  c.from = {"Fagforbundet avd. 1", "post@budstikke.example"};
  const auto m = build(c);
  CHECK(header(m, "To") == R"("Nordmann, Kari \"KN\"" <kari@example.org>)");
  CHECK(header(m, "From") == R"("Fagforbundet avd. 1" <post@budstikke.example>)");
  c.to = {"", "kari@example.org"};
  CHECK(header(build(c), "To") == "kari@example.org");
}

TEST_CASE("mime long subjects are folded", "[templates][mime]") {
  SECTION("ASCII folds at blanks and unfolds to the original") {
    std::string subject;
    for (int i = 0; i < 40; ++i) subject += "word" + std::to_string(i) + " ";
    subject.pop_back();
    auto c = sample();
    c.subject = subject;
    const auto m = build(c);
    check_lines(m);
    CHECK(header(m, "Subject") == subject);
    for (const auto& line : lines_of(header_block(m))) CHECK(line.size() <= 78);
  }
  SECTION("non-ASCII splits into short encoded words on whole characters") {
    std::string subject;
    for (int i = 0; i < 30; ++i) subject += "Tariffoppgjøret er klart: blåbærsyltetøy på Ærø ";
    subject += "€𝄞";  // 3- and 4-byte sequences
    auto c = sample();
    c.subject = subject;
    const auto m = build(c);
    check_lines(m);
    CHECK(decode_words(header(m, "Subject")) == subject);
    bool in_subject = false;
    for (const auto& line : lines_of(header_block(m))) {
      if (line.starts_with("Subject: ")) in_subject = true;
      else if (!line.starts_with(" ")) in_subject = false;
      if (in_subject) CHECK(line.size() <= 76);
    }
  }
  SECTION("an unbreakable ASCII run is encoded rather than left over-long") {
    const std::string subject(3000, 'x');
    auto c = sample();
    c.subject = subject;
    const auto m = build(c);
    check_lines(m);
    CHECK(decode_words(header(m, "Subject")) == subject);
  }
  SECTION("text that looks like an encoded word is itself encoded") {
    auto c = sample();
    c.subject = "=?utf-8?B?aGk=?=";
    CHECK(decode_words(header(build(c), "Subject")) == "=?utf-8?B?aGk=?=");
  }
}

TEST_CASE("mime header injection is impossible", "[templates][mime]") {
  const std::array extra = {
      tpl::header_field{"X-Tag", "a\r\nBcc: evil@example.org"},
      tpl::header_field{"Bad Name", "x"},
      tpl::header_field{"X:Colon", "x"},
      tpl::header_field{"", "x"},
      tpl::header_field{"X-Æ", "x"},
      tpl::header_field{"Bcc", "evil@example.org"},
      tpl::header_field{"content-type", "text/evil"},
      tpl::header_field{"X-Long", std::string_view("y")},
  };
  auto c = sample();
  c.subject = "Hi\r\nBcc: x@y\n\nbody?";
  const std::string nul_name("Kari\0\r\nCc: z@y", 14);
  c.to = {nul_name, "kari@example.org>\r\nBcc: w@y"};
  c.from = {"Ola\rTo: q@y", "post@budstikke.example"};
  c.message_id = "id\r\nBcc: v@y";
  c.extra_headers = extra;
  const auto m = build(c);
  check_lines(m);
  const auto headers = header_block(m);
  for (const auto& line : lines_of(headers)) {
    CHECK_FALSE(line.starts_with("Bcc"));
    CHECK_FALSE(line.starts_with("Cc"));
    CHECK_FALSE(line.starts_with("To: q"));
    CHECK_FALSE(line.starts_with("X:Colon"));
    CHECK_FALSE(line.starts_with("Bad Name"));
    CHECK_FALSE(line.starts_with("content-type"));
    CHECK_FALSE(line.starts_with("X-\xC3"));
  }
  CHECK(header(m, "Subject") == "Hi Bcc: x@y body?");
  CHECK(header(m, "To") == "\"Kari Cc: z@y\" <kari@example.orgBcc:w@y>");
  CHECK(header(m, "From") == "\"Ola To: q@y\" <post@budstikke.example>");
  CHECK(header(m, "X-Tag") == "a Bcc: evil@example.org");
  CHECK(header(m, "Message-ID") == "<idBcc:v@y>");
  CHECK(m.find("\r\n\r\n") == m.find("\r\nContent-Transfer-Encoding: quoted-printable") + 45);
}

TEST_CASE("mime extra headers fold and stay within 998 octets", "[templates][mime]") {
  const std::string long_value(2500, 'z');
  std::string spaced;
  for (int i = 0; i < 100; ++i) spaced += "token" + std::to_string(i) + " ";
  const std::array extra = {tpl::header_field{"X-Long", long_value}, tpl::header_field{"X-Spaced", spaced},
                            tpl::header_field{"X-Navn", "Blåbær"}};
  auto c = sample();
  c.extra_headers = extra;
  const auto m = build(c);
  check_lines(m);
  CHECK(header(m, "X-Spaced") == spaced.substr(0, spaced.size() - 1));
  CHECK(decode_words(header(m, "X-Navn")) == "Blåbær");
}

TEST_CASE("mime quoted-printable bodies", "[templates][mime]") {
  CHECK(qp("a=b") == "a=3Db");
  CHECK(qp("æøå") == "=C3=A6=C3=B8=C3=A5");
  CHECK(qp("trailing \nspace\t\r\nend ") == "trailing=20\r\nspace=09\r\nend=20");
  CHECK(qp("bare\rcr\nlf\r\ncrlf") == "bare\r\ncr\r\nlf\r\ncrlf");
  CHECK(qp("inner  blanks stay") == "inner  blanks stay");
  CHECK(qp("ctl\x01\x7f") == "ctl=01=7F");
  CHECK(qp(".leading dot stays for the SMTP layer") == ".leading dot stays for the SMTP layer");

  const std::string exactly_76(76, 'a');
  CHECK(qp(exactly_76) == exactly_76);
  CHECK(qp(exactly_76 + "a") == std::string(75, 'a') + "=\r\naa");

  std::string body;
  for (int i = 0; i < 50; ++i) body += "Lønnsoppgjøret = 3,5 % for alle medlemmer; se https://example.org/a?b=c&d=e ";
  body += "\n\nslutt  \n";
  std::string encoded = qp(body);
  for (const auto& line : lines_of(encoded + "\r\n")) {
    CHECK(line.size() <= 76);
    CHECK((line.empty() || (line.back() != ' ' && line.back() != '\t')));
    // '=' only starts an escape or a soft break
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] != '=') continue;
      if (i + 1 == line.size()) continue;
      REQUIRE(i + 2 < line.size() + 0);
      CHECK(std::isxdigit(static_cast<unsigned char>(line[i + 1])));
      CHECK(std::isxdigit(static_cast<unsigned char>(line[i + 2])));
    }
  }
  std::string normalized;
  for (const char ch : body) ch == '\n' ? normalized += "\r\n" : normalized += ch;
  CHECK(qp_decode(encoded) == normalized);
}

TEST_CASE("mime multipart/alternative with a boundary absent from the bodies", "[templates][mime]") {
  auto c = sample();
  c.text = "Hei Kari,\nTariffoppgjøret er klart.\n";
  c.html = "<p>Hei Kari,</p>\n<p>Tariffoppgjøret er klart.</p>";
  const auto first = build(c);
  const auto content_type = header(first, "Content-Type");
  REQUIRE(content_type.starts_with("multipart/alternative; boundary=\""));
  const auto boundary = content_type.substr(33, content_type.size() - 34);
  CHECK(boundary.size() <= 70);

  // The boundary does not depend on the bodies: put it into them and it must still not appear.
  const std::string hostile_text = "--" + boundary + "\n--" + boundary + "--\n" + std::string(c.text);
  const std::string hostile_html = "<pre>--" + boundary + "</pre>\n";
  c.text = hostile_text;
  c.html = hostile_html;
  const auto m = build(c);
  check_lines(m);
  CHECK(header(m, "Content-Type") == content_type);
  CHECK(header(m, "MIME-Version") == "1.0");

  const auto body = body_of(m);
  const std::string delimiter = "--" + boundary;
  std::vector<std::size_t> at;
  for (auto p = body.find(delimiter); p != std::string::npos; p = body.find(delimiter, p + 1)) at.push_back(p);
  REQUIRE(at.size() == 3);  // text, html, close: nothing else in the bodies matches
  CHECK(at[0] == 0);
  CHECK(body.compare(at[2], delimiter.size() + 4, delimiter + "--\r\n") == 0);
  CHECK(at[2] + delimiter.size() + 4 == body.size());

  auto part = [&](std::size_t k) {
    const auto start = at[k] + delimiter.size() + 2;
    const auto text = body.substr(start, at[k + 1] - 2 - start);  // the CRLF before a delimiter belongs to it
    const auto split = text.find("\r\n\r\n");
    return std::pair{text.substr(0, split + 2), text.substr(split + 4)};
  };
  const auto [text_headers, text_body] = part(0);
  const auto [html_headers, html_body] = part(1);
  CHECK(text_headers == "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n");
  CHECK(html_headers == "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n");
  std::string expected_text;
  for (const char ch : hostile_text) ch == '\n' ? expected_text += "\r\n" : expected_text += ch;
  CHECK(qp_decode(text_body) + "\r\n" == expected_text);
  CHECK(qp_decode(html_body) + "\r\n" == "<pre>--" + boundary + "</pre>\r\n");
}

TEST_CASE("mime single-part html and empty bodies", "[templates][mime]") {
  auto c = sample();
  c.text = {};
  c.html = "<p>x</p>";
  auto m = build(c);
  check_lines(m);
  CHECK(header(m, "Content-Type") == "text/html; charset=utf-8");
  CHECK(body_of(m) == "<p>x</p>\r\n");
  c.html = {};
  m = build(c);
  check_lines(m);
  CHECK(header(m, "Content-Type") == "text/plain; charset=utf-8");
  CHECK(body_of(m).empty());
}

TEST_CASE("mime appends into a reused buffer", "[templates][mime]") {
  auto c = sample();
  std::string out;
  tpl::build_email(c, out);
  const auto once = out;
  out.clear();
  const auto capacity = out.capacity();
  tpl::build_email(c, out);
  CHECK(out == once);
  CHECK(out.capacity() == capacity);
}

TEST_CASE("mime keeps a UTF-8 address only when the message travels with SMTPUTF8", "[templates][mime]") {
  auto c = sample();
  c.to = {"Åse", "åse@avd1.example"};
  CHECK(header(build(c), "To").ends_with("<se@avd1.example>"));  // 8-bit dropped: never raw without SMTPUTF8
  c.smtputf8 = true;
  const auto m = build(c);
  check_lines(m);
  CHECK(header(m, "To").ends_with("<åse@avd1.example>"));
}
