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

namespace {

const unsubscribe_key key_a{"a", "secret-of-key-a-0123456789"};
const unsubscribe_key key_b{"b2", "secret-of-key-b-0123456789"};

std::string token_of(const unsubscribe_key& key, std::string_view campaign, std::string_view member) {
  std::string token;
  make_unsubscribe_token(key, campaign, member, "email", token);
  return token;
}

std::optional<unsubscribe_fields> verify(std::initializer_list<unsubscribe_key> keys, std::string_view token) {
  return verify_unsubscribe_token(std::span<const unsubscribe_key>(keys.begin(), keys.size()), token);
}

// The token with its payload replaced and its signature kept.
std::string with_payload(const std::string& token, std::string_view payload) {
  std::string out;
  append_base64url(payload, out);
  return out + token.substr(token.find('.'));
}

std::string payload_of(const std::string& token) {
  std::string payload;
  REQUIRE(decode_base64url(std::string_view(token).substr(0, token.find('.')), payload));
  return payload;
}

// Made by the release before key ids, with the secret "secret-of-the-old-release", for member
// "M:1042" of campaign "nyhetsbrev-2025": links of this form are in newsletters already sent.
constexpr std::string_view version_1_token =
    "MTplbWFpbDpueWhldHNicmV2LTIwMjU6TToxMDQy.d7jlqIAgz_ctIjm3xlCdZrAPvb8oQBte8Ox4HbYxRUU";
const unsubscribe_key old_release_key{"0", "secret-of-the-old-release"};

}  // namespace

TEST_CASE("unsubscribe: a token verifies and gives back its fields") {
  const auto token = token_of(key_b, "tariff-2026", "M:1042");
  CHECK(payload_of(token) == "2:b2:email:tariff-2026:M:1042");
  auto f = verify({key_b}, token);
  REQUIRE(f);
  CHECK(f->version == 2);
  CHECK(f->key_id == "b2");
  CHECK(f->campaign == "tariff-2026");
  CHECK(f->member == "M:1042");
  CHECK(f->channel == "email");
  CHECK(token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == std::string::npos);
  // base64url of the payload (5 bytes + key id + channel + campaign + member), '.', 43 for the MAC.
  CHECK(token.size() == (29 * 4 + 2) / 3 + 1 + 43);
}

TEST_CASE("unsubscribe: a wrong secret, a changed payload or a broken token is refused") {
  const auto token = token_of(key_a, "c1", "M1");
  CHECK_FALSE(verify({{"a", "secret-two-0123456789"}}, token));
  CHECK_FALSE(verify({}, token));
  CHECK_FALSE(verify({key_a}, token.substr(0, token.size() - 1)));
  CHECK_FALSE(verify({key_a}, ""));
  CHECK_FALSE(verify({key_a}, "no-dot"));
  CHECK_FALSE(verify({key_a}, token + "A"));

  // The payload of another member with this member's signature.
  const auto other = token_of(key_a, "c1", "M2");
  CHECK_FALSE(verify({key_a}, other.substr(0, other.find('.')) + token.substr(token.find('.'))));

  // A flipped bit anywhere in the signature.
  for (std::size_t i = token.find('.') + 1; i < token.size(); ++i) {
    auto t = token;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    CHECK_FALSE(verify({key_a}, t));
  }
}

TEST_CASE("unsubscribe: version 1 tokens, made before key ids, still verify with any configured key") {
  auto f = verify({old_release_key}, version_1_token);
  REQUIRE(f);
  CHECK(f->version == 1);
  CHECK(f->key_id == "0");
  CHECK(f->channel == "email");
  CHECK(f->campaign == "nyhetsbrev-2025");
  CHECK(f->member == "M:1042");
  // After a rotation the old secret is a verify-only key, under any id, in any place.
  f = verify({key_a, key_b, {"old", old_release_key.secret}}, version_1_token);
  REQUIRE(f);
  CHECK(f->key_id == "old");
  // Without it, refused; and a version 1 payload with a key id in it is no version 2 token.
  CHECK_FALSE(verify({key_a, key_b}, version_1_token));
  CHECK_FALSE(verify({old_release_key}, with_payload(std::string(version_1_token), "2:0:email:nyhetsbrev-2025:M:1042")));
  CHECK_FALSE(verify({old_release_key}, with_payload(std::string(version_1_token), "1:email:nyhetsbrev-2025:M:1043")));
}

TEST_CASE("unsubscribe: after a rotation a token of the old key verifies while the old key is listed") {
  const auto old_token = token_of(key_a, "nyhetsbrev-mars", "M7");
  // B signs now; A only verifies.
  const auto f = verify({key_b, key_a}, old_token);
  REQUIRE(f);
  CHECK(f->key_id == "a");
  CHECK(f->member == "M7");
  const auto new_token = token_of(key_b, "nyhetsbrev-april", "M7");
  REQUIRE(verify({key_b, key_a}, new_token));
  CHECK(verify({key_b, key_a}, new_token)->key_id == "b2");
  // A removed: its tokens are refused, B's still verify.
  CHECK_FALSE(verify({key_b}, old_token));
  CHECK(verify({key_b}, new_token));
}

TEST_CASE("unsubscribe: the key id is signed, and names the one key that may have signed") {
  const auto token = token_of(key_a, "c1", "M1");
  REQUIRE(payload_of(token) == "2:a:email:c1:M1");
  // Another configured key's id put in: refused, whichever keys are listed.
  CHECK_FALSE(verify({key_a, key_b}, with_payload(token, "2:b2:email:c1:M1")));
  // An id no key has: refused, even when a configured secret made the signature.
  CHECK_FALSE(verify({key_a, key_b}, token_of({"zz", key_a.secret}, "c1", "M1")));
  CHECK_FALSE(verify({key_b}, token));
  // A token naming key A but signed with B's secret: refused, although B is configured.
  const auto claims_a = token_of({"a", key_b.secret}, "c1", "M1");
  REQUIRE(payload_of(claims_a) == payload_of(token));
  CHECK_FALSE(verify({key_a, key_b}, claims_a));
  CHECK(verify({{"a", key_b.secret}}, claims_a));  // the same token is fine where A's secret is B's
  // Unknown versions and ids that are not ids.
  CHECK_FALSE(verify({key_a}, with_payload(token, "3:a:email:c1:M1")));
  CHECK_FALSE(verify({key_a}, with_payload(token, "2:")));
}

TEST_CASE("unsubscribe: key ids are 1 to 8 of A-Z a-z 0-9 _ -") {
  for (std::string_view id : {"0", "a", "2026-12", "key_B", "ABCDEFGH"}) CHECK(valid_unsubscribe_key_id(id));
  for (std::string_view id : {"", "ABCDEFGHI", "a:b", "a b", "æ", "a.b", "a/b"}) CHECK_FALSE(valid_unsubscribe_key_id(id));
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

TEST_CASE("unsubscribe: the Python function in docs/unsubscribe.md verifies tokens made here and by the release before") {
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

  const unsubscribe_key engine_key{"k2", "portal-and-engine-share-this"};
  const std::string token = token_of(engine_key, "tariff-2026", "M:1042 Åse");
  std::string tampered = token;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';

  auto script = std::filesystem::temp_directory_path() / ("budstikke-unsub-" + std::to_string(::getpid()) + ".py");
  {
    std::ofstream out(script);
    out << function << "\n"
        << "keys = {'k2': b'portal-and-engine-share-this', '0': b'" << old_release_key.secret << "'}\n"
        << "print(verify_unsubscribe_token(keys, '" << token << "'))\n"
        << "print(verify_unsubscribe_token(keys, '" << version_1_token << "'))\n"
        << "print(verify_unsubscribe_token({'k2': b'wrong-secret-0123456789'}, '" << token << "'))\n"
        << "print(verify_unsubscribe_token({'k1': b'portal-and-engine-share-this'}, '" << token << "'))\n"
        << "print(verify_unsubscribe_token({'k2': b'portal-and-engine-share-this'}, '" << version_1_token << "'))\n"
        << "print(verify_unsubscribe_token(keys, '" << tampered << "'))\n"
        << "print(verify_unsubscribe_token(keys, '" << token_of({"0", engine_key.secret}, "c1", "M1") << "'))\n";
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
  CHECK(output ==
        "{'version': 2, 'key_id': 'k2', 'channel': 'email', 'campaign': 'tariff-2026', 'member': 'M:1042 Åse'}\n"
        "{'version': 1, 'key_id': '0', 'channel': 'email', 'campaign': 'nyhetsbrev-2025', 'member': 'M:1042'}\n"
        "None\nNone\nNone\nNone\nNone\n");
}
