#pragma once

// RFC 5322 / MIME message assembly for one rendered e-mail.
//
// Output guarantees the SMTP layer relies on: every line ends in CRLF, no line exceeds 998
// octets (headers are folded, bodies are quoted-printable with lines of at most 76), and no byte
// of any input can start a new header (CR, LF and other controls in header values are replaced,
// NUL is removed, invalid extra header names are skipped). Dot-stuffing is left to the SMTP layer.

#include <chrono>
#include <span>
#include <string>
#include <string_view>

namespace budstikke::templates {

struct mailbox {
  std::string_view display_name;  // UTF-8, may be empty
  std::string_view address;       // ASCII (IDN in xn-- form), or UTF-8 when the message is smtputf8
};

struct header_field {
  std::string_view name;
  std::string_view value;
};

struct email_content {
  mailbox from;
  mailbox to;
  std::string_view subject;
  std::string_view text;        // text/plain body (may be empty)
  std::string_view html;        // text/html body (may be empty); both -> multipart/alternative
  std::string_view message_id;  // without angle brackets, e.g. "c42.1700000000000-0.5f3a@budstikke.example"
  std::chrono::system_clock::time_point date;
  // e.g. {"X-Budstikke-Campaign", "c42"}. Skipped: names that are not printable ASCII without ':',
  // and names of headers this builder writes itself (From, To, Subject, Date, Message-ID,
  // MIME-Version, Content-*) or that must never travel in a message (Bcc).
  std::span<const header_field> extra_headers;
  // The message travels with SMTPUTF8 (RFC 6531/6532): addresses may keep their UTF-8 characters.
  bool smtputf8 = false;
};

// Appends the complete message (headers, blank line, body) to `out`.
void build_email(const email_content& content, std::string& out);

// Quoted-printable (RFC 2045) of `body` appended to `out`: bare CR and LF become CRLF hard breaks,
// lines are at most 76 characters, '=', controls, 8-bit bytes and line-final blanks are encoded.
void append_quoted_printable(std::string_view body, std::string& out);

}  // namespace budstikke::templates
