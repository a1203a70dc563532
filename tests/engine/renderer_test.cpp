// The renderer as the engine uses it: whole messages read back, List-Unsubscribe, SMS limits.
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "engine/renderer.hpp"
#include "templates/unsubscribe.hpp"
#include "tests/templates/mime_reader.hpp"

using namespace budstikke;
using namespace budstikke::testing::mime;
using engine::campaign_renderer;

namespace {

constexpr std::string_view secret = "a-secret-of-enough-bytes";

config unsubscribe_config() {
  config cfg;
  cfg.email.unsubscribe_url = "https://min.forbundet.example/avmeld?t={token}";
  cfg.email.unsubscribe_mailto = "mailto:avmelding@forbundet.example?subject={token}";
  cfg.email.unsubscribe_secret = std::string(secret);
  return cfg;
}

queue::campaign_definition newsletter(std::string category = "newsletter") {
  queue::campaign_definition def;
  def.id = "nytt-2026";
  def.category = std::move(category);
  def.from_address = "nyheter@forbundet.example";
  def.from_name = "Forbundet Øst";
  def.templates = {{"subject", "Hei {{name}}: {{subject_line}}"},
                   {"text", "Hei {{name}},\n{{body}}\nAvmeld: {{unsubscribe_url}}\n"},
                   {"html", "<p>Hei {{name}},</p><p>{{body}}</p><a href=\"{{unsubscribe_url}}\">Avmeld</a>"}};
  return def;
}

std::unique_ptr<campaign_renderer> compile(const queue::campaign_definition& def, const config& cfg) {
  auto r = campaign_renderer::compile(def, cfg);
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r);
  return std::move(*r);
}

// The parts of a multipart/alternative message: content type -> decoded body.
std::vector<std::pair<std::string, std::string>> parts(const std::string& message) {
  const auto type = header(message, "Content-Type");
  const auto b = type.find("boundary=\"");
  REQUIRE(b != std::string::npos);
  const auto boundary = "--" + type.substr(b + 10, type.find('"', b + 10) - b - 10);
  const auto body = body_of(message);
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t p = body.find(boundary + "\r\n");
  REQUIRE(p == 0);
  while (p != std::string::npos && body.compare(p, boundary.size() + 2, boundary + "--") != 0) {
    const auto start = p + boundary.size() + 2;
    const auto next = body.find("\r\n" + boundary, start);
    REQUIRE(next != std::string::npos);
    const auto part = body.substr(start, next + 2 - start);
    CHECK(header(part, "Content-Transfer-Encoding") == "quoted-printable");
    out.emplace_back(header(part, "Content-Type"), qp_decode(body_of(part)));
    p = next + 2;
  }
  REQUIRE(body.substr(p) == boundary + "--\r\n");
  return out;
}

}  // namespace

TEST_CASE("renderer: a newsletter reads back whole, whatever the data holds") {
  auto cfg = unsubscribe_config();
  auto r = compile(newsletter(), cfg);
  adapters::delivery d;
  const std::string data = R"({"name":"Åse \"Sjefen\" <Ødegård>\r\nBcc: evil@x.example","subject_line":"Lønn\r\nX-Evil: 1\u0000",)"
                           R"("body":"Linje én\r\n.\r\nMAIL FROM:<x@y>\n)" + std::string(3000, 'x') + R"("})";
  REQUIRE_FALSE(r->prepare_email("1700000000000-0", "aase@avd1.example", "M7", data, d));
  check_lines(d.data);
  const auto headers = header_block(d.data);
  for (const auto& line : lines_of(headers)) {
    CHECK_FALSE(line.starts_with("Bcc"));
    CHECK_FALSE(line.starts_with("X-Evil"));
  }
  CHECK(decode_words(header(d.data, "Subject")) == "Hei Åse \"Sjefen\" <Ødegård> Bcc: evil@x.example: Lønn X-Evil: 1");
  auto ps = parts(d.data);
  REQUIRE(ps.size() == 2);
  CHECK(ps[0].first == "text/plain; charset=utf-8");
  CHECK(ps[0].second.starts_with("Hei Åse \"Sjefen\" <Ødegård>\r\nBcc: evil@x.example,\r\nLinje én\r\n.\r\nMAIL FROM:<x@y>\r\n"));
  CHECK(ps[1].first == "text/html; charset=utf-8");
  CHECK(ps[1].second.find("&lt;Ødegård&gt;") != std::string::npos);
  CHECK(d.envelope_from == "nyheter@forbundet.example");
  CHECK(d.envelope_to == "aase@avd1.example");
  CHECK_FALSE(d.needs_smtputf8);
}

TEST_CASE("renderer: newsletters carry List-Unsubscribe with a token a portal can verify") {
  auto cfg = unsubscribe_config();
  auto r = compile(newsletter(), cfg);
  REQUIRE(r->has_unsubscribe_headers());
  adapters::delivery d;
  REQUIRE_FALSE(r->prepare_email("1-0", "kari@avd1.example", "M1042", R"({"name":"Kari"})", d));
  const auto value = header(d.data, "List-Unsubscribe");
  const std::string prefix = "<https://min.forbundet.example/avmeld?t=";
  REQUIRE(value.starts_with(prefix));
  const auto token = value.substr(prefix.size(), value.find('>') - prefix.size());
  const templates::unsubscribe_key key{"0", std::string(secret)};
  auto fields = templates::verify_unsubscribe_token({&key, 1}, token);
  REQUIRE(fields);
  CHECK(fields->version == 2);
  CHECK(fields->key_id == "0");
  CHECK(fields->campaign == "nytt-2026");
  CHECK(fields->member == "M1042");
  CHECK(fields->channel == "email");
  CHECK(value == prefix + token + ">, <mailto:avmelding@forbundet.example?subject=" + token + ">");
  CHECK(header(d.data, "List-Unsubscribe-Post") == "List-Unsubscribe=One-Click");
  // Templates get the same URL.
  CHECK(parts(d.data)[0].second.find("Avmeld: https://min.forbundet.example/avmeld?t=" + token) != std::string::npos);
}

TEST_CASE("renderer: after a rotation the tokens are signed with the first key only") {
  auto cfg = unsubscribe_config();
  cfg.email.unsubscribe_key_id = "2027-01";
  cfg.email.unsubscribe_secret = "the-new-secret-0123456789";
  cfg.email.unsubscribe_accepted_keys = {{"0", std::string(secret)}};
  auto r = compile(newsletter(), cfg);
  adapters::delivery d;
  REQUIRE_FALSE(r->prepare_email("1-0", "kari@avd1.example", "M1042", R"({"name":"Kari"})", d));
  const auto value = header(d.data, "List-Unsubscribe");
  const std::string prefix = "<https://min.forbundet.example/avmeld?t=";
  REQUIRE(value.starts_with(prefix));
  const auto token = value.substr(prefix.size(), value.find('>') - prefix.size());
  auto fields = templates::verify_unsubscribe_token(cfg.email.unsubscribe_keys(), token);
  REQUIRE(fields);
  CHECK(fields->key_id == "2027-01");
  const templates::unsubscribe_key old_key{"0", std::string(secret)};
  CHECK_FALSE(templates::verify_unsubscribe_token({&old_key, 1}, token));
}

TEST_CASE("renderer: other categories, or no URL, get no List-Unsubscribe") {
  auto cfg = unsubscribe_config();
  adapters::delivery d;
  auto tariff = compile(newsletter("tariff"), cfg);
  CHECK_FALSE(tariff->has_unsubscribe_headers());
  REQUIRE_FALSE(tariff->prepare_email("1-0", "kari@avd1.example", "M1", "{}", d));
  CHECK(header(d.data, "List-Unsubscribe").empty());
  CHECK(header(d.data, "List-Unsubscribe-Post").empty());

  cfg.email.unsubscribe_url.clear();
  auto mailto_only = compile(newsletter(), cfg);
  REQUIRE_FALSE(mailto_only->prepare_email("1-0", "kari@avd1.example", "M1", "{}", d));
  CHECK(header(d.data, "List-Unsubscribe").starts_with("<mailto:"));
  CHECK(header(d.data, "List-Unsubscribe-Post").empty());  // RFC 8058 needs an https URI
}

TEST_CASE("renderer: IDN recipients go out in xn-- form, UTF-8 local parts need SMTPUTF8") {
  config cfg;
  auto r = compile(newsletter(), cfg);
  adapters::delivery d;
  REQUIRE_FALSE(r->prepare_email("1-0", "kari@blåbær.no", "M1", "{}", d));
  CHECK(d.envelope_to == "kari@xn--blbr-roah.no");
  CHECK_FALSE(d.needs_smtputf8);
  CHECK(header(d.data, "To") == "kari@xn--blbr-roah.no");
  REQUIRE_FALSE(r->prepare_email("1-1", "åse@blåbær.no", "M2", "{}", d));
  CHECK(d.envelope_to == "åse@xn--blbr-roah.no");
  CHECK(d.needs_smtputf8);
  CHECK(header(d.data, "To") == "åse@xn--blbr-roah.no");
  auto bad = r->prepare_email("1-2", "ikke-en-adresse", "M3", "{}", d);
  REQUIRE(bad);
  CHECK(bad->state == queue::final_state::skipped);
  CHECK(bad->reason == "address has no @");
  auto data = r->prepare_email("1-3", "kari@avd1.example", "M4", "[1]", d);
  REQUIRE(data);
  CHECK(data->state == queue::final_state::failed);
}

TEST_CASE("renderer: SMS text, encoding, segments and the segment limit") {
  config cfg;
  cfg.sms.max_segments = 2;
  queue::campaign_definition def;
  def.id = "sms-1";
  def.kind = queue::channel::sms;
  def.templates = {{"sms", "Hei {{name}}! «Tariff» er klar – {{text}}\n"}};
  auto r = compile(def, cfg);
  templates::sms::message m;
  REQUIRE_FALSE(r->render_sms("+4799999999", "M1", R"({"name":"Åse","text":"svar JA"})", m));
  CHECK(m.text() == "Hei Åse! \"Tariff\" er klar - svar JA");
  CHECK(m.coding() == templates::sms::encoding::gsm7);
  CHECK(m.segments() == 1);
  CHECK(m.normalised());

  auto over = r->render_sms("+4799999999", "M2", R"({"name":"Åse","text":")" + std::string(300, 'x') + "\"}", m);
  REQUIRE(over);
  CHECK(over->state == queue::final_state::skipped);
  CHECK(over->reason == "the SMS has 3 segments, more than the campaign's maximum of 2");

  def.sms_max_segments = 3;
  auto r3 = compile(def, cfg);
  CHECK_FALSE(r3->render_sms("+4799999999", "M2", R"({"name":"Åse","text":")" + std::string(300, 'x') + "\"}", m));

  cfg.sms.normalise = false;
  auto raw = compile(def, cfg);
  REQUIRE_FALSE(raw->render_sms("+4799999999", "M1", R"({"name":"Åse","text":"ok"})", m));
  CHECK(m.coding() == templates::sms::encoding::ucs2);

  def.templates = {{"sms", "{{#never}}x{{/never}}\n"}};
  auto empty = compile(def, cfg)->render_sms("+4799999999", "M1", "{}", m);
  REQUIRE(empty);
  CHECK(empty->state == queue::final_state::skipped);
}

TEST_CASE("renderer: the missing-variable handler sees what the data lacks") {
  config cfg;
  auto r = compile(newsletter(), cfg);
  std::vector<std::string> missing;
  const templates::missing_variable_fn fn = [&](std::string_view name) { missing.emplace_back(name); };
  r->set_missing_variable_handler(&fn);
  adapters::delivery d;
  REQUIRE_FALSE(r->prepare_email("1-0", "kari@avd1.example", "M1", R"({"name":"Kari"})", d));
  CHECK(std::count(missing.begin(), missing.end(), "body") == 2);
  CHECK(std::count(missing.begin(), missing.end(), "subject_line") == 1);
  CHECK(std::count(missing.begin(), missing.end(), "name") == 0);
}

TEST_CASE("renderer: a render cut off by the render budget is failed, for e-mail and SMS") {
  config cfg;
  auto def = newsletter();
  // Twice itself at every level while the member's data says `deep`: 2^100 expansions.
  def.templates["text"] = "Hei {{name}}\n{{#deep}}{{>twice}}{{/deep}}\n";
  def.partials = {{"twice", "{{#deep}}{{>twice}}{{>twice}}{{/deep}}x"}};
  auto r = compile(def, cfg);
  adapters::delivery d;
  REQUIRE_FALSE(r->prepare_email("1-0", "kari@avd1.example", "M1", R"({"name":"Kari"})", d));
  auto blown = r->prepare_email("1-1", "kari@avd1.example", "M2", R"({"name":"Kari","deep":true})", d);
  REQUIRE(blown);
  CHECK(blown->state == queue::final_state::failed);
  CHECK(blown->reason.rfind("render budget exceeded in template text", 0) == 0);

  queue::campaign_definition sms;
  sms.id = "sms-budget";
  sms.kind = queue::channel::sms;
  sms.templates = {{"sms", "Hei {{#deep}}{{>twice}}{{/deep}}\n"}};
  sms.partials = def.partials;
  templates::sms::message m;
  auto blown_sms = compile(sms, cfg)->render_sms("+4799999999", "M2", R"({"deep":true})", m);
  REQUIRE(blown_sms);
  CHECK(blown_sms->state == queue::final_state::failed);
  CHECK(blown_sms->reason.rfind("render budget exceeded in template sms", 0) == 0);
}
