// UTF-8 decoding shared by address checks, recipient files and the SMS encoder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace budstikke::templates::utf8 {

inline constexpr char32_t invalid = 0xFFFFFFFF;

// Decodes the code point starting at s[i] and moves i past it. Ill-formed input (a stray
// continuation byte, truncation, overlong forms, surrogates, values past U+10FFFF) gives
// `invalid` and moves i by one byte.
inline char32_t next(std::string_view s, std::size_t& i) noexcept {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    ++i;
    return c;
  }
  std::size_t n;
  char32_t cp;
  if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
  else { ++i; return invalid; }
  if (i + n >= s.size()) { ++i; return invalid; }
  for (std::size_t k = 1; k <= n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) { ++i; return invalid; }
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
      (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
    ++i;
    return invalid;
  }
  i += n + 1;
  return cp;
}

// True when every byte sequence in `s` is well-formed UTF-8.
inline bool valid(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
    } else if (next(s, i) == invalid) {
      return false;
    }
  }
  return true;
}

inline bool is_ascii(std::string_view s) noexcept {
  for (const char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

}  // namespace budstikke::templates::utf8
