// Decoding of application/x-www-form-urlencoded names and values (query strings, form bodies):
// '+' is a space and %XX the byte with hex digits XX (either case). Splitting at '&' and '=' is
// the caller's, since that is where what a key without '=' means is decided.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace budstikke::support {

// What a '%' not followed by two hex digits does.
enum class malformed_escape : std::uint8_t {
  keep,    // it stays as it is, as the WHATWG URL standard's form parser does
  reject,  // the whole component is refused
};

// Appends the decoded `in` to `out`; false only for a malformed escape under
// malformed_escape::reject (`out` is then left as it was).
bool decode_form_component(std::string_view in, std::string& out, malformed_escape on_malformed);

}  // namespace budstikke::support
