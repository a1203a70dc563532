#include "support/base64.hpp"

#include <array>
#include <cstdint>

namespace budstikke::support {
namespace {

struct alphabet {
  std::string_view digits;  // 64 characters
  bool padded;
};

constexpr alphabet standard{"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", true};
constexpr alphabet url{"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", false};

using decode_table = std::array<std::int8_t, 256>;

constexpr decode_table make_table(const alphabet& a) {
  decode_table t{};
  t.fill(-1);
  for (std::size_t i = 0; i < 64; ++i) t[static_cast<unsigned char>(a.digits[i])] = static_cast<std::int8_t>(i);
  return t;
}

constexpr decode_table standard_table = make_table(standard);
constexpr decode_table url_table = make_table(url);

void encode(const alphabet& a, std::string_view in, std::string& out) {
  const std::size_t full = in.size() / 3 * 3;
  const std::size_t rest = in.size() - full;
  out.reserve(out.size() + in.size() / 3 * 4 + 4);
  for (std::size_t i = 0; i < full; i += 3) {
    const std::uint32_t v = (static_cast<unsigned char>(in[i]) << 16) |
                            (static_cast<unsigned char>(in[i + 1]) << 8) | static_cast<unsigned char>(in[i + 2]);
    out.push_back(a.digits[(v >> 18) & 63]);
    out.push_back(a.digits[(v >> 12) & 63]);
    out.push_back(a.digits[(v >> 6) & 63]);
    out.push_back(a.digits[v & 63]);
  }
  if (rest == 0) return;
  std::uint32_t v = static_cast<unsigned char>(in[full]) << 16;
  if (rest == 2) v |= static_cast<unsigned char>(in[full + 1]) << 8;
  out.push_back(a.digits[(v >> 18) & 63]);
  out.push_back(a.digits[(v >> 12) & 63]);
  if (rest == 2) out.push_back(a.digits[(v >> 6) & 63]);
  if (a.padded) out.append(rest == 2 ? 1 : 2, '=');
}

bool decode(const alphabet& a, const decode_table& table, std::string_view in, std::string& out) {
  if (a.padded) {
    if (in.size() % 4 != 0) return false;
    // At most two '=', at the end only; what they stand for is the unpadded length's business.
    std::size_t pad = 0;
    while (pad < 2 && pad < in.size() && in[in.size() - 1 - pad] == '=') ++pad;
    in.remove_suffix(pad);
  }
  if (in.size() % 4 == 1) return false;  // one character holds 6 bits: less than a byte
  const std::size_t start = out.size();
  out.reserve(start + in.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : in) {
    const auto d = table[static_cast<unsigned char>(c)];
    if (d < 0) {
      out.resize(start);
      return false;
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero, so every input has exactly one spelling.
  if ((acc & ((1u << bits) - 1)) != 0) {
    out.resize(start);
    return false;
  }
  return true;
}

}  // namespace

void append_base64(std::string_view in, std::string& out) { encode(standard, in, out); }
void append_base64url(std::string_view in, std::string& out) { encode(url, in, out); }
bool decode_base64(std::string_view in, std::string& out) { return decode(standard, standard_table, in, out); }
bool decode_base64url(std::string_view in, std::string& out) { return decode(url, url_table, in, out); }

}  // namespace budstikke::support
