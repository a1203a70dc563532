// Reading back what the MIME builder wrote: lines, unfolded headers, encoded words,
// quoted-printable. Shared by the MIME tests and the engine's renderer tests.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "support/base64.hpp"

namespace budstikke::testing::mime {

inline std::vector<std::string> lines_of(const std::string& message) {
  std::vector<std::string> lines;
  std::size_t p = 0;
  while (p < message.size()) {
    const auto e = message.find("\r\n", p);
    REQUIRE(e != std::string::npos);  // every line, the last included, ends in CRLF
    lines.push_back(message.substr(p, e - p));
    p = e + 2;
  }
  return lines;
}

inline void check_lines(const std::string& message) {
  for (std::size_t i = 0; i < message.size(); ++i) {
    if (message[i] == '\n') REQUIRE((i > 0 && message[i - 1] == '\r'));
    if (message[i] == '\r') REQUIRE((i + 1 < message.size() && message[i + 1] == '\n'));
    REQUIRE(message[i] != '\0');
  }
  for (const auto& line : lines_of(message)) CHECK(line.size() <= 998);
}

inline std::string header_block(const std::string& message) { return message.substr(0, message.find("\r\n\r\n") + 2); }

// The unfolded value of the first header called `name`.
inline std::string header(const std::string& message, const std::string& name) {
  const auto headers = header_block(message);
  const auto at = headers.starts_with(name + ": ") ? 0 : headers.find("\r\n" + name + ": ");
  if (at == std::string::npos) return {};
  const auto start = headers.find(": ", at) + 2;
  std::string value;
  std::size_t p = start;
  for (;;) {
    const auto e = headers.find("\r\n", p);
    value += headers.substr(p, e - p);
    p = e + 2;
    if (p >= headers.size() || (headers[p] != ' ' && headers[p] != '\t')) break;
  }
  return value;
}

inline bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

// Decodes a header value made of B encoded words only, checking each word's size and content.
inline std::string decode_words(const std::string& unfolded) {
  std::string out;
  std::size_t p = 0;
  while ((p = unfolded.find("=?utf-8?B?", p)) != std::string::npos) {
    const auto end = unfolded.find("?=", p + 10);
    REQUIRE(end != std::string::npos);
    CHECK(end + 2 - p <= 75);
    std::string decoded;
    REQUIRE(support::decode_base64(std::string_view(unfolded).substr(p + 10, end - p - 10), decoded));
    CHECK(valid_utf8(decoded));  // never split inside a UTF-8 sequence
    out += decoded;
    p = end + 2;
  }
  return out;
}

inline std::string qp_decode(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '=') {
      out.push_back(in[i]);
    } else if (in.substr(i + 1, 2) == "\r\n") {
      i += 2;
    } else {
      out.push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    }
  }
  return out;
}

inline std::string body_of(const std::string& message) { return message.substr(message.find("\r\n\r\n") + 4); }

}  // namespace budstikke::testing::mime
