#include "templates/unsubscribe.hpp"

#include <array>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "support/base64.hpp"

namespace budstikke::templates {
using support::append_base64url;
using support::decode_base64url;

namespace {

constexpr std::size_t mac_size = 32;
constexpr std::size_t max_key_id = 8;

std::array<unsigned char, mac_size> mac(std::string_view secret, std::string_view payload) {
  std::array<unsigned char, mac_size> out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), out.data(), &len);
  return out;
}

bool signed_with(std::string_view secret, std::string_view payload, std::string_view signature) {
  const auto expected = mac(secret, payload);
  return CRYPTO_memcmp(expected.data(), signature.data(), mac_size) == 0;
}

// The part of `s` before the next ':' from `pos`, and `pos` moved past that ':'; nullopt when
// there is none.
std::optional<std::string_view> next_field(std::string_view s, std::size_t& pos) {
  const auto colon = s.find(':', pos);
  if (colon == std::string_view::npos) return std::nullopt;
  auto field = s.substr(pos, colon - pos);
  pos = colon + 1;
  return field;
}

}  // namespace

bool valid_unsubscribe_key_id(std::string_view id) {
  if (id.empty() || id.size() > max_key_id) return false;
  for (unsigned char c : id)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  return true;
}

void make_unsubscribe_token(const unsubscribe_key& key, std::string_view campaign, std::string_view member,
                            std::string_view channel, std::string& out) {
  thread_local std::string payload;
  payload.assign("2:");
  payload.append(key.id);
  payload.push_back(':');
  payload.append(channel);
  payload.push_back(':');
  payload.append(campaign);
  payload.push_back(':');
  payload.append(member);
  append_base64url(payload, out);
  out.push_back('.');
  const auto m = mac(key.secret, payload);
  append_base64url(std::string_view(reinterpret_cast<const char*>(m.data()), m.size()), out);
}

std::optional<unsubscribe_fields> verify_unsubscribe_token(std::span<const unsubscribe_key> keys,
                                                           std::string_view token) {
  const auto dot = token.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  std::string payload, signature;
  if (!decode_base64url(token.substr(0, dot), payload) || !decode_base64url(token.substr(dot + 1), signature) ||
      signature.size() != mac_size)
    return std::nullopt;

  // The version and key id are read before the signature is checked, to know which key to check
  // it with; both are part of what is signed, so a changed one fails the check.
  std::size_t pos = 0;
  const auto version = next_field(payload, pos);
  if (!version) return std::nullopt;
  unsubscribe_fields f;
  const unsubscribe_key* key = nullptr;
  if (*version == "2") {
    f.version = 2;
    const auto id = next_field(payload, pos);
    if (!id || !valid_unsubscribe_key_id(*id)) return std::nullopt;
    for (const auto& k : keys)
      if (k.id == *id) key = &k;
    if (!key || !signed_with(key->secret, payload, signature)) return std::nullopt;
  } else if (*version == "1") {
    // No key id: any key may have signed it (tokens made before a key had an id).
    f.version = 1;
    for (const auto& k : keys)
      if (signed_with(k.secret, payload, signature)) {
        key = &k;
        break;
      }
    if (!key) return std::nullopt;
  } else {
    return std::nullopt;
  }

  const auto channel = next_field(payload, pos);
  const auto campaign = channel ? next_field(payload, pos) : std::nullopt;
  if (!campaign) return std::nullopt;
  f.key_id = key->id;
  f.channel = *channel;
  f.campaign = *campaign;
  f.member = payload.substr(pos);
  return f;
}

}  // namespace budstikke::templates
