#include "engine/address.hpp"

#include <cstdint>

namespace budstikke::engine {
namespace {

bool atext(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '/': case '=': case '?': case '^': case '_': case '`': case '{': case '|': case '}': case '~':
      return true;
    default:
      return false;
  }
}

bool valid_local_part(std::string_view local) {
  if (local.empty() || local.size() > 64) return false;
  if (local.front() == '"') {
    if (local.size() < 2 || local.back() != '"') return false;
    for (std::size_t i = 1; i + 1 < local.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(local[i]);
      if (c < 0x20 || c >= 0x7f) return false;
      if (c == '\\') {
        if (++i + 1 >= local.size()) return false;
      } else if (c == '"') {
        return false;
      }
    }
    return true;
  }
  bool previous_dot = true;  // a leading dot is as bad as two in a row
  for (unsigned char c : local) {
    if (c == '.') {
      if (previous_dot) return false;
      previous_dot = true;
    } else if (atext(c)) {
      previous_dot = false;
    } else {
      return false;
    }
  }
  return !previous_dot;
}

bool valid_domain(std::string_view domain) {
  if (domain.empty() || domain.size() > 253) return false;
  std::size_t labels = 0;
  std::size_t start = 0;
  for (;;) {
    auto dot = domain.find('.', start);
    auto label = domain.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (unsigned char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return false;
    }
    ++labels;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return labels >= 2;
}

}  // namespace

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n;
    std::uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    if (i + n >= s.size()) return false;  // truncated sequence
    for (std::size_t k = 1; k <= n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    i += n + 1;
  }
  return true;
}

std::optional<std::string_view> email_address_problem(std::string_view address) {
  if (address.empty()) return "empty address";
  if (address.size() > 254) return "address longer than 254 octets";
  for (unsigned char c : address) {
    if (c < 0x20 || c == 0x7f) return "control character in address";
    if (c >= 0x80) return "non-ASCII address (needs SMTPUTF8 or IDN encoding)";
  }
  auto at = address.rfind('@');
  if (at == std::string_view::npos) return "address has no @";
  if (!valid_local_part(address.substr(0, at))) return "invalid local part";
  if (!valid_domain(address.substr(at + 1))) return "invalid domain";
  return std::nullopt;
}

}  // namespace budstikke::engine
