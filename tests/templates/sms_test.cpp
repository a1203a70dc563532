#include <string>

#include <catch2/catch.hpp>

#include "templates/sms.hpp"

using namespace budstikke::templates;
using sms::encoding;

namespace {

sms::message analysed(std::string_view text, bool normalise = true) {
  sms::message m;
  auto problem = sms::analyse(text, normalise, m);
  INFO(text);
  REQUIRE_FALSE(problem);
  return m;
}

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

}  // namespace

TEST_CASE("sms: GSM 7-bit segment boundaries") {
  for (auto [n, segments] : {std::pair{0, 1}, {1, 1}, {160, 1}, {161, 2}, {306, 2}, {307, 3}, {459, 3}, {460, 4}}) {
    auto m = analysed(std::string(static_cast<std::size_t>(n), 'a'));
    INFO(n);
    CHECK(m.coding() == encoding::gsm7);
    CHECK(m.units() == static_cast<std::size_t>(n));
    CHECK(m.segments() == static_cast<std::size_t>(segments));
  }
  auto m = analysed(std::string(306, 'x'));
  REQUIRE(m.segments() == 2);
  CHECK(m.segment(0).size() == 153);
  CHECK(m.segment(1).size() == 153);
}

TEST_CASE("sms: UCS-2 segment boundaries") {
  for (auto [n, segments] : {std::pair{70, 1}, {71, 2}, {134, 2}, {135, 3}}) {
    auto m = analysed("ж" + repeat("a", static_cast<std::size_t>(n - 1)));
    INFO(n);
    CHECK(m.coding() == encoding::ucs2);
    CHECK(m.units() == static_cast<std::size_t>(n));
    CHECK(m.segments() == static_cast<std::size_t>(segments));
  }
}

TEST_CASE("sms: Norwegian letters are in the default alphabet") {
  auto m = analysed("ÆØÅæøå é Ü ß ¿ § £ ¥ @ $ _ Δ");
  CHECK(m.coding() == encoding::gsm7);
  CHECK(m.units() == 28);
}

TEST_CASE("sms: extension characters cost two septets") {
  auto m = analysed("€[]{}|^~\\\f");
  CHECK(m.coding() == encoding::gsm7);
  CHECK(m.units() == 20);
  CHECK(analysed(std::string(80, '{')).segments() == 1);   // 160 septets
  CHECK(analysed(std::string(80, '{').append("a")).segments() == 2);
}

TEST_CASE("sms: an escape pair is never split across segments") {
  for (const std::string ext : {"€", "[", "]", "{", "}", "|", "^", "~", "\\", "\f"}) {
    INFO(ext);
    // 152 septets, then an extension character that would straddle 153/154.
    auto text = std::string(152, 'a') + ext + std::string(100, 'b');
    auto m = analysed(text);
    REQUIRE(m.segments() == 2);
    CHECK(m.segment(0) == std::string(152, 'a'));  // 152 septets: the pair moved on
    CHECK(m.segment(1).substr(0, ext.size()) == ext);
    CHECK(m.units() == 254);
  }
  // Exactly fitting: 151 + 2 = 153.
  auto m = analysed(std::string(151, 'a') + "€" + std::string(10, 'b'));
  REQUIRE(m.segments() == 2);
  CHECK(m.segment(0) == std::string(151, 'a') + "€");
}

TEST_CASE("sms: a surrogate pair is never split across segments") {
  // 66 units, then an emoji (2 units) that would straddle 67/68.
  auto text = repeat("a", 66) + "🎉" + repeat("b", 10);
  auto m = analysed(text);
  CHECK(m.coding() == encoding::ucs2);
  CHECK(m.units() == 78);
  REQUIRE(m.segments() == 2);
  CHECK(m.segment(0) == repeat("a", 66));
  CHECK(m.segment(1) == "🎉" + repeat("b", 10));
  CHECK(analysed(repeat("🎉", 35)).segments() == 1);  // 70 units
  CHECK(analysed(repeat("🎉", 35) + "a").segments() == 2);
}

TEST_CASE("sms: typographic characters are normalised when that keeps the text GSM") {
  auto m = analysed("«Hei» “Kari” – det er Kari’s tur… — ‘ok’");
  CHECK(m.coding() == encoding::gsm7);
  CHECK(m.normalised());
  CHECK(m.text() == "\"Hei\" \"Kari\" - det er Kari's tur... - 'ok'");
  CHECK(m.units() == m.text().size());
  CHECK(m.describe_changes() == "« -> \" ×1, » -> \" ×1, “ -> \" ×1, ” -> \" ×1, ‘ -> ' ×1, ’ -> ' ×2, – -> - ×1, "
                                "— -> - ×1, … -> ... ×1");
  auto nbsp = analysed("kr\u00A0100");
  CHECK(nbsp.text() == "kr 100");
  CHECK(nbsp.describe_changes() == "U+00A0 ->   ×1");
}

TEST_CASE("sms: normalisation leaves a text alone that needs UCS-2 anyway, or when it is off") {
  auto m = analysed("“Hei” 🎉");
  CHECK(m.coding() == encoding::ucs2);
  CHECK_FALSE(m.normalised());
  CHECK(m.text() == "“Hei” 🎉");
  CHECK(m.changes().empty());
  auto off = analysed("“Hei”", false);
  CHECK(off.coding() == encoding::ucs2);
  CHECK(off.units() == 5);
  CHECK(off.describe_changes().empty());
}

TEST_CASE("sms: characters outside GSM force UCS-2") {
  CHECK(analysed("Hei`").coding() == encoding::ucs2);     // backtick
  CHECK(analysed("Hei\t").coding() == encoding::ucs2);    // tab
  CHECK(analysed("Привет").coding() == encoding::ucs2);
  CHECK(analysed("Ελλάδα").coding() == encoding::ucs2);   // lower-case Greek is not GSM
  auto mixed = analysed("Hei Åse 👋 €5");
  CHECK(mixed.coding() == encoding::ucs2);
  CHECK(mixed.units() == 13);  // the emoji is two units, € one
}

TEST_CASE("sms: invalid UTF-8 is an error") {
  sms::message m;
  CHECK(sms::analyse("Hei \xC3", true, m).has_value());
  CHECK(sms::analyse("\xED\xA0\x80", true, m).has_value());
  CHECK(sms::analyse("\xFF", true, m).has_value());
}

TEST_CASE("sms: encoding to septets and UTF-16") {
  std::string out;
  sms::encode(analysed("@Å€a"), out);
  CHECK(out == std::string("\x00\x0E\x1B\x65\x61", 5));
  out.clear();
  sms::encode(analysed("ж🎉"), out);
  CHECK(out == std::string("\x04\x36\xD8\x3C\xDF\x89", 6));
}

TEST_CASE("sms: a reused message keeps no state from the last text") {
  sms::message m;
  REQUIRE_FALSE(sms::analyse("“x” " + std::string(200, 'a'), true, m));
  CHECK(m.segments() == 2);
  REQUIRE_FALSE(sms::analyse("kort", true, m));
  CHECK(m.segments() == 1);
  CHECK(m.text() == "kort");
  CHECK_FALSE(m.normalised());
  CHECK(m.changes().empty());
}
