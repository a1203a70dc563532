#pragma once

// Signed unsubscribe tokens for List-Unsubscribe URLs (RFC 2369, RFC 8058).
//
//   token   = base64url(payload) "." base64url(HMAC-SHA256(secret, payload))   (no '=' padding)
//   payload = "2" ":" key-id ":" channel ":" campaign ":" member               (UTF-8, version 2)
//           | "1" ":" channel ":" campaign ":" member                         (version 1)
//
// The version comes first and the member id last, so the member id may contain ':' (key ids,
// channels and campaign ids cannot). Version 2 names the key that signed it, so that a secret
// can be replaced while the links in newsletters already sent keep working: the engine signs
// with the first key of its list and verifies with any. Version 1 tokens (made before key ids
// existed) are still accepted, checked against every key. A portal verifies a token with the
// shared secrets and nothing else; docs/unsubscribe.md has the format and a verification
// function in Python.

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace budstikke::templates {

// The version make_unsubscribe_token writes.
inline constexpr int unsubscribe_token_version = 2;

struct unsubscribe_key {
  std::string id;      // [A-Za-z0-9_-]{1,8}, carried in version 2 tokens
  std::string secret;  // shared with the portal
};

// True for an id a key may have: 1 to 8 of A-Z a-z 0-9 _ -.
bool valid_unsubscribe_key_id(std::string_view id);

struct unsubscribe_fields {
  int version = unsubscribe_token_version;
  std::string key_id;    // the key whose signature matched
  std::string channel;   // "email" or "sms"
  std::string campaign;
  std::string member;
};

// Appends the version 2 token for (campaign, member, channel), signed with `key`, to `out`.
void make_unsubscribe_token(const unsubscribe_key& key, std::string_view campaign, std::string_view member,
                            std::string_view channel, std::string& out);

// The fields when `token` is well-formed, of a known version and signed with one of `keys` (the
// key its id names for version 2, any of them for version 1; signatures are compared in constant
// time); nullopt otherwise.
std::optional<unsubscribe_fields> verify_unsubscribe_token(std::span<const unsubscribe_key> keys,
                                                           std::string_view token);

}  // namespace budstikke::templates
