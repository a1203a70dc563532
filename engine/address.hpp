// Recipient address checks shared by `enqueue` (report early) and the shard (check at send time).
#pragma once

#include <optional>
#include <string_view>

namespace budstikke::engine {

// nullopt when `address` is an addr-spec the engine can send to over SMTP without SMTPUTF8:
// dot-atom or quoted local part, a domain of LDH labels with at least one dot, no white space
// or control characters, at most 254 octets. Otherwise the reason, for the record.
std::optional<std::string_view> email_address_problem(std::string_view address);

// True when every byte sequence in `s` is well-formed UTF-8.
bool valid_utf8(std::string_view s);

}  // namespace budstikke::engine
