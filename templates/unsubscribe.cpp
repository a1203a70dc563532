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

std::array<unsigned char, mac_size> mac(std::string_view secret, std::string_view payload) {
  std::array<unsigned char, mac_size> out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), out.data(), &len);
  return out;
}

}  // namespace

void make_unsubscribe_token(std::string_view secret, std::string_view campaign, std::string_view member,
                            std::string_view channel, std::string& out) {
  thread_local std::string payload;
  payload.assign("1:");
  payload.append(channel);
  payload.push_back(':');
  payload.append(campaign);
  payload.push_back(':');
  payload.append(member);
  append_base64url(payload, out);
  out.push_back('.');
  const auto m = mac(secret, payload);
  append_base64url(std::string_view(reinterpret_cast<const char*>(m.data()), m.size()), out);
}

std::optional<unsubscribe_fields> verify_unsubscribe_token(std::string_view secret, std::string_view token) {
  const auto dot = token.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  std::string payload, signature;
  if (!decode_base64url(token.substr(0, dot), payload) || !decode_base64url(token.substr(dot + 1), signature) ||
      signature.size() != mac_size)
    return std::nullopt;
  const auto expected = mac(secret, payload);
  if (CRYPTO_memcmp(expected.data(), signature.data(), mac_size) != 0) return std::nullopt;

  // Signed by us: the layout is ours, but check it rather than trust it.
  const auto first = payload.find(':');
  const auto second = first == std::string::npos ? first : payload.find(':', first + 1);
  const auto third = second == std::string::npos ? second : payload.find(':', second + 1);
  if (third == std::string::npos || payload.compare(0, first, "1") != 0) return std::nullopt;
  unsubscribe_fields f;
  f.version = 1;
  f.channel = payload.substr(first + 1, second - first - 1);
  f.campaign = payload.substr(second + 1, third - second - 1);
  f.member = payload.substr(third + 1);
  return f;
}

}  // namespace budstikke::templates
