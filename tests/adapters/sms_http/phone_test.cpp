#include <catch2/catch.hpp>

#include <string>

#include "adapters/sms_http/phone.hpp"

using namespace budstikke::adapters::sms_http;

TEST_CASE("sms phone: Norwegian numbers as members type them become E.164") {
  std::string out;
  for (const char* typed : {"41234567", "412 34 567", "+47 412 34 567", "0047 41234567", "(+47) 41-23-45-67"}) {
    INFO(typed);
    CHECK_FALSE(normalise_phone(typed, "NO", out));
    CHECK(out == "+4741234567");
  }
  CHECK_FALSE(normalise_phone("90000000", "NO", out));
  CHECK(out == "+4790000000");
}

TEST_CASE("sms phone: international numbers keep their country whatever the default region") {
  std::string out;
  CHECK_FALSE(normalise_phone("+46 70 123 45 67", "NO", out));
  CHECK(out == "+46701234567");
  CHECK_FALSE(normalise_phone("070-123 45 67", "SE", out));
  CHECK(out == "+46701234567");
}

TEST_CASE("sms phone: invalid and fixed-line numbers are refused with a reason") {
  std::string out;
  CHECK(normalise_phone("", "NO", out));
  CHECK(normalise_phone("hello", "NO", out));
  CHECK(normalise_phone("12", "NO", out) == std::string_view("not a valid phone number"));
  CHECK(normalise_phone("4123456", "NO", out));  // one digit short
  CHECK(normalise_phone("22 22 22 22", "NO", out) == std::string_view("a fixed-line number cannot receive SMS"));
  CHECK(normalise_phone("800 12 345", "NO", out));  // toll-free
  CHECK(normalise_phone(std::string(100, '4'), "NO", out) == std::string_view("the phone number is too long"));
  // The reason never repeats the number.
  auto reason = normalise_phone("+47 22 22 22 22", "NO", out);
  REQUIRE(reason);
  CHECK(reason->find("22") == std::string_view::npos);
}

TEST_CASE("sms phone: region codes") {
  CHECK(is_known_region("NO"));
  CHECK(is_known_region("SE"));
  CHECK_FALSE(is_known_region("XX"));
  CHECK_FALSE(is_known_region("no"));
}
