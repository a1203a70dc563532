#pragma once

// Signed unsubscribe tokens for List-Unsubscribe URLs (RFC 2369, RFC 8058).
//
//   token   = base64url(payload) "." base64url(HMAC-SHA256(secret, payload))   (no '=' padding)
//   payload = "1" ":" channel ":" campaign ":" member                         (UTF-8)
//
// The version comes first and the member id last, so the member id may contain ':' (campaign
// ids and channels cannot). A portal verifies a token with the shared secret and nothing else;
// docs/unsubscribe.md has the format and a verification function in Python.

#include <optional>
#include <string>
#include <string_view>

namespace budstikke::templates {

inline constexpr int unsubscribe_token_version = 1;

struct unsubscribe_fields {
  int version = unsubscribe_token_version;
  std::string channel;   // "email" or "sms"
  std::string campaign;
  std::string member;
};

// Appends the token for (campaign, member, channel) to `out`.
void make_unsubscribe_token(std::string_view secret, std::string_view campaign, std::string_view member,
                            std::string_view channel, std::string& out);

// The fields when `token` is well-formed, of a known version and signed with `secret` (the
// signature is compared in constant time); nullopt otherwise.
std::optional<unsubscribe_fields> verify_unsubscribe_token(std::string_view secret, std::string_view token);

}  // namespace budstikke::templates
