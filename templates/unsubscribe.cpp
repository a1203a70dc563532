#include "templates/unsubscribe.hpp"

#include <array>
#include <cstdint>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace budstikke::templates {
namespace {

constexpr char url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::size_t mac_size = 32;

constexpr std::array<std::int8_t, 256> make_decode_table() {
  std::array<std::int8_t, 256> t{};
  t.fill(-1);
  for (std::int8_t i = 0; i < 64; ++i) t[static_cast<unsigned char>(url_alphabet[i])] = i;
  return t;
}
constexpr auto decode_table = make_decode_table();

std::array<unsigned char, mac_size> mac(std::string_view secret, std::string_view payload) {
  std::array<unsigned char, mac_size> out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), out.data(), &len);
  return out;
}

}  // namespace

void append_base64url(std::string_view in, std::string& out) {
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const std::uint32_t v = (static_cast<unsigned char>(in[i]) << 16) |
                            (static_cast<unsigned char>(in[i + 1]) << 8) | static_cast<unsigned char>(in[i + 2]);
    out.push_back(url_alphabet[(v >> 18) & 63]);
    out.push_back(url_alphabet[(v >> 12) & 63]);
    out.push_back(url_alphabet[(v >> 6) & 63]);
    out.push_back(url_alphabet[v & 63]);
  }
  if (const auto rest = in.size() - i; rest > 0) {
    std::uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out.push_back(url_alphabet[(v >> 18) & 63]);
    out.push_back(url_alphabet[(v >> 12) & 63]);
    if (rest == 2) out.push_back(url_alphabet[(v >> 6) & 63]);
  }
}

bool decode_base64url(std::string_view in, std::string& out) {
  if (in.size() % 4 == 1) return false;
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : in) {
    const auto d = decode_table[static_cast<unsigned char>(c)];
    if (d < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero, so every token has exactly one spelling.
  return (acc & ((1u << bits) - 1)) == 0;
}

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
