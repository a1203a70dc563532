// Base64 (RFC 4648), the project's one codec: the standard alphabet with '=' padding (section 4:
// SMTP AUTH, HTTP basic auth, MIME encoded words) and the URL-safe one without padding
// (section 5: unsubscribe tokens). Line wrapping is the caller's business.
//
// Decoding is strict, so that every input has exactly one spelling: only the alphabet (no
// whitespace, no line breaks), padding exactly as the encoder writes it (required for base64,
// refused for base64url), and the unused bits of the last character zero.
#pragma once

#include <string>
#include <string_view>

namespace budstikke::support {

// Appends the encoding of `in` to `out`.
void append_base64(std::string_view in, std::string& out);
void append_base64url(std::string_view in, std::string& out);

// Appends the bytes `in` encodes to `out`; false when `in` is not canonical (`out` is then
// left as it was).
bool decode_base64(std::string_view in, std::string& out);
bool decode_base64url(std::string_view in, std::string& out);

}  // namespace budstikke::support
