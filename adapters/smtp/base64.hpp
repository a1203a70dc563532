// Base64 for SMTP AUTH (RFC 4954), shared by the client dialog and the test sink; OpenSSL does
// the coding.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace budstikke::adapters::smtp {

void append_base64(std::string& out, std::string_view in);
// nullopt when `in` is not valid base64.
std::optional<std::string> decode_base64(std::string_view in);

}  // namespace budstikke::adapters::smtp
