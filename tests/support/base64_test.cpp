#include <string>
#include <string_view>
#include <utility>

#include <catch2/catch.hpp>

#include "support/base64.hpp"

using namespace budstikke::support;
using namespace std::string_view_literals;

namespace {

std::string base64(std::string_view in) {
  std::string out;
  append_base64(in, out);
  return out;
}

std::string base64url(std::string_view in) {
  std::string out;
  append_base64url(in, out);
  return out;
}

}  // namespace

TEST_CASE("base64: the test vectors of RFC 4648 section 10, both ways") {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
      {"\0user\0pass"sv, "AHVzZXIAcGFzcw=="},  // AUTH PLAIN
      {"\xFB\xFF\xBF", "+/+/"},
  };
  for (const auto& [plain, encoded] : vectors) {
    INFO(encoded);
    CHECK(base64(plain) == encoded);
    std::string back;
    REQUIRE(decode_base64(encoded, back));
    CHECK(back == plain);
  }
}

TEST_CASE("base64: appends to what is there") {
  std::string out = "Basic ";
  append_base64("user:pass", out);
  CHECK(out == "Basic dXNlcjpwYXNz");
  std::string decoded = "x";
  REQUIRE(decode_base64("Zm9v", decoded));
  CHECK(decoded == "xfoo");
}

TEST_CASE("base64: every byte value survives a round trip, at every length") {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n <= all.size(); n += 1 + n / 8) {
    const auto in = std::string_view(all).substr(all.size() - n);
    std::string std_out, url_out;
    REQUIRE(decode_base64(base64(in), std_out));
    CHECK(std_out == in);
    REQUIRE(decode_base64url(base64url(in), url_out));
    CHECK(url_out == in);
  }
}

TEST_CASE("base64: strict decoding refuses what the encoder never writes") {
  std::string out = "kept";
  const std::string_view bad_inputs[] = {"Zg=", "Zg", "Zm8", "Zg===", "====", "Z===", "Zh==", "Zm9=", "Zm 9v",
                                         "Zm9v\r\n", " Zm9v", "Zm9v ", "Zm=v", "Zm9v-_", "Zm9v\0"sv};
  for (std::string_view bad : bad_inputs) {
    INFO(bad);
    CHECK_FALSE(decode_base64(bad, out));
    CHECK(out == "kept");  // untouched on failure
  }
  CHECK(decode_base64("", out));
  CHECK(out == "kept");
}

TEST_CASE("base64url: no padding, URL-safe characters, one spelling") {
  CHECK(base64url("\xFB\xFF") == "-_8");
  CHECK(base64url("f") == "Zg");
  CHECK(base64url("fo") == "Zm8");
  CHECK(base64url("foo") == "Zm9v");
  std::string out;
  REQUIRE(decode_base64url("-_8", out));
  CHECK(out == "\xFB\xFF");
  out.clear();
  for (std::string_view bad : {"-_9", "a", "Zg==", "Zm8=", "ab+/", "Zm9v.", "Zm 9"}) {
    INFO(bad);
    CHECK_FALSE(decode_base64url(bad, out));
    CHECK(out.empty());
  }
}
