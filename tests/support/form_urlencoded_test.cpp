#include <catch2/catch.hpp>

#include "support/form_urlencoded.hpp"

using namespace budstikke::support;

namespace {

std::string decoded(std::string_view in, malformed_escape m) {
  std::string out;
  REQUIRE(decode_form_component(in, out, m));
  return out;
}

}  // namespace

TEST_CASE("form component: '+' is a space, %XX a byte in either case") {
  for (auto m : {malformed_escape::keep, malformed_escape::reject}) {
    CHECK(decoded("", m) == "");
    CHECK(decoded("a+b", m) == "a b");
    CHECK(decoded("%2B%2b", m) == "++");
    CHECK(decoded("%C3%A5se%20%c3%b8", m) == "\xC3\xA5se \xC3\xB8");
    CHECK(decoded("%00", m) == std::string(1, '\0'));
    CHECK(decoded("%25zz", m) == "%zz");  // decoded once, never twice
    CHECK(decoded("a%3Db%26c", m) == "a=b&c");
    CHECK(decoded("-._~", m) == "-._~");
  }
}

TEST_CASE("form component: appends to what is there") {
  std::string out = "x=";
  REQUIRE(decode_form_component("1+2", out, malformed_escape::reject));
  CHECK(out == "x=1 2");
}

TEST_CASE("form component: a malformed escape is kept as it is, or refuses the component") {
  for (std::string_view bad : {"%", "%4", "%zz", "%4g", "%g4", "a%", "100%+sure", "%%41"}) {
    INFO(bad);
    std::string out = "kept";
    CHECK_FALSE(decode_form_component(bad, out, malformed_escape::reject));
    CHECK(out == "kept");
  }
  CHECK(decoded("%", malformed_escape::keep) == "%");
  CHECK(decoded("%4", malformed_escape::keep) == "%4");
  CHECK(decoded("%zz", malformed_escape::keep) == "%zz");
  CHECK(decoded("a%", malformed_escape::keep) == "a%");
  CHECK(decoded("100%+sure", malformed_escape::keep) == "100% sure");
  CHECK(decoded("%%41", malformed_escape::keep) == "%A");
}
