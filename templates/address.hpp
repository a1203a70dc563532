// Recipient address checks shared by `enqueue` (report early), previews and the engine (check at
// send time), and the form an address takes in the SMTP envelope and the To: header.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace budstikke::templates {

// nullopt when `address` is an addr-spec the engine can send to over SMTP as it is, without
// SMTPUTF8: dot-atom or quoted local part, a domain of LDH labels with at least one dot, no white
// space or control characters, at most 254 octets. Otherwise the reason, for the record.
std::optional<std::string_view> email_address_problem(std::string_view address);

// Like email_address_problem, but internationalised addresses are usable: the sendable form goes
// to `out` (replaced), with an IDN domain in its ASCII "xn--" form (IDNA2008 with UTS #46
// mapping, libidn2) and the local part as given. A non-ASCII (UTF-8) local part is not an error
// but sets `needs_smtputf8`: only a relay offering SMTPUTF8 (RFC 6531) takes it.
std::optional<std::string_view> prepare_email_address(std::string_view address, std::string& out,
                                                      bool& needs_smtputf8);

// A sender as people write it: `post@forbundet.example`, `Forbundet <post@forbundet.example>` or
// `"Forbundet, avd. 1" <post@forbundet.example>` (quotes and backslash escapes of RFC 5322's
// quoted-string). The address must pass email_address_problem; the display name (UTF-8) may not
// hold control characters. `name` is empty when none was given.
struct sender {
  std::string name;
  std::string address;
};
// The sender, or the reason it cannot be read (naming what to type instead).
std::optional<std::string> parse_sender(std::string_view text, sender& out);

// The domain of an envelope address (after the last '@'), empty when there is none.
std::string_view address_domain(std::string_view address);

}  // namespace budstikke::templates
