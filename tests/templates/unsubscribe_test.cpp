#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "support/base64.hpp"
#include "templates/unsubscribe.hpp"

using namespace budstikke::templates;
using budstikke::support::append_base64url;  // the tokens' base64url
using budstikke::support::decode_base64url;

TEST_CASE("unsubscribe: a token verifies and gives back its fields") {
  std::string token;
  make_unsubscribe_token("s3cret-s3cret-s3cret", "tariff-2026", "M:1042", "email", token);
  auto f = verify_unsubscribe_token("s3cret-s3cret-s3cret", token);
  REQUIRE(f);
  CHECK(f->version == 1);
  CHECK(f->campaign == "tariff-2026");
  CHECK(f->member == "M:1042");
  CHECK(f->channel == "email");
  CHECK(token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == std::string::npos);
}

TEST_CASE("unsubscribe: a wrong secret, a changed payload or a broken token is refused") {
  std::string token;
  make_unsubscribe_token("secret-one", "c1", "M1", "email", token);
  CHECK_FALSE(verify_unsubscribe_token("secret-two", token));
  CHECK_FALSE(verify_unsubscribe_token("secret-one", token.substr(0, token.size() - 1)));
  CHECK_FALSE(verify_unsubscribe_token("secret-one", ""));
  CHECK_FALSE(verify_unsubscribe_token("secret-one", "no-dot"));
  CHECK_FALSE(verify_unsubscribe_token("secret-one", token + "A"));

  // The payload of another member with this member's signature.
  std::string other;
  make_unsubscribe_token("secret-one", "c1", "M2", "email", other);
  auto forged = other.substr(0, other.find('.')) + token.substr(token.find('.'));
  CHECK_FALSE(verify_unsubscribe_token("secret-one", forged));

  // A flipped bit anywhere in the signature.
  for (std::size_t i = token.find('.') + 1; i < token.size(); ++i) {
    auto t = token;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    CHECK_FALSE(verify_unsubscribe_token("secret-one", t));
  }
}

TEST_CASE("unsubscribe: base64url round trip without padding") {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xFF\xFE\xFD"}) {
    std::string enc, dec;
    append_base64url(s, enc);
    CHECK(enc.find('=') == std::string::npos);
    REQUIRE(decode_base64url(enc, dec));
    CHECK(dec == s);
  }
  std::string enc;
  append_base64url("\xFB\xFF", enc);
  CHECK(enc == "-_8");
  std::string dec;
  CHECK_FALSE(decode_base64url("-_9", dec));  // non-zero leftover bits
  CHECK_FALSE(decode_base64url("a", dec));
  CHECK_FALSE(decode_base64url("ab+/", dec));
}

TEST_CASE("unsubscribe: the Python function in docs/unsubscribe.md verifies a token made here") {
  if (::access("/usr/bin/python3", X_OK) != 0) {
    WARN("skipped: /usr/bin/python3 is missing");
    return;
  }
  std::ifstream doc(std::string(BUDSTIKKE_TEST_SOURCE_DIR) + "/docs/unsubscribe.md");
  REQUIRE(doc);
  std::stringstream ss;
  ss << doc.rdbuf();
  const std::string text = ss.str();
  // The first ```python block is the verification function.
  const auto start = text.find("```python\n");
  REQUIRE(start != std::string::npos);
  const auto end = text.find("```", start + 10);
  REQUIRE(end != std::string::npos);
  const std::string function = text.substr(start + 10, end - start - 10);

  std::string token;
  make_unsubscribe_token("portal-and-engine-share-this", "tariff-2026", "M:1042 Åse", "email", token);
  std::string tampered = token;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';

  auto script = std::filesystem::temp_directory_path() / ("budstikke-unsub-" + std::to_string(::getpid()) + ".py");
  {
    std::ofstream out(script);
    out << function << "\n"
        << "print(verify_unsubscribe_token(b'portal-and-engine-share-this', '" << token << "'))\n"
        << "print(verify_unsubscribe_token(b'wrong-secret', '" << token << "'))\n"
        << "print(verify_unsubscribe_token(b'portal-and-engine-share-this', '" << tampered << "'))\n";
  }
  std::string cmd = "/usr/bin/python3 " + script.string() + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string output;
  char buf[512];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) output.append(buf, n);
  const int status = ::pclose(p);
  std::filesystem::remove(script);
  INFO(output);
  REQUIRE(status == 0);
  CHECK(output == "{'version': 1, 'channel': 'email', 'campaign': 'tariff-2026', 'member': 'M:1042 Åse'}\nNone\nNone\n");
}
