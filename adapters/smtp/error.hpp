// Why an SMTP connection ended or a reply was refused, as std::error_code (no exceptions on the
// data path).
#pragma once

#include <system_error>

namespace budstikke::adapters::smtp {

enum class error {
  reply_line_too_long = 1,  // a reply line longer than reply_parser::max_line
  reply_too_many_lines,     // a multi-line reply longer than reply_parser::max_lines
  malformed_reply,          // not "NNN-text" / "NNN text", or codes differ within one reply
  unexpected_reply,         // a reply nobody asked for, or a code the command cannot get
  greeting_refused,         // 421/554 (or anything but 220) as greeting
  hello_refused,            // EHLO and HELO both refused
  service_closing,          // 421: the server is closing the connection
  connection_lost,          // EOF or a socket error
  timeout,                  // a connect, command or data timeout expired
  starttls_unavailable,     // TLS required but STARTTLS not offered (stripped?) or refused
  tls_failed,               // the TLS handshake or certificate verification failed
  auth_requires_tls,        // credentials configured but the connection is not encrypted
  auth_unavailable,         // credentials configured but no mechanism we speak (PLAIN, LOGIN)
  auth_failed,              // the relay refused the credentials (535) or the exchange
};

const std::error_category& smtp_category() noexcept;

inline std::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), smtp_category()};
}

}  // namespace budstikke::adapters::smtp

template <>
struct std::is_error_code_enum<budstikke::adapters::smtp::error> : std::true_type {};
