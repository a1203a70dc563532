#include "templates/mime.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

#include "support/base64.hpp"

namespace budstikke::templates {
namespace {

constexpr std::size_t fold_at = 78;         // RFC 5322 2.1.1: SHOULD stay within 78 characters
constexpr std::size_t hard_limit = 998;     // RFC 5322 2.1.1: MUST stay within 998 characters
constexpr std::size_t encoded_line = 76;    // RFC 2047 2: lines with encoded words within 76
constexpr std::size_t max_encoded_word = 75;
constexpr std::string_view word_prefix = "=?utf-8?B?";
constexpr std::string_view word_suffix = "?=";
constexpr char hex_digits[] = "0123456789ABCDEF";

constexpr bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Header text with controls replaced: a run of CR, LF, TAB or other C0/DEL bytes becomes one
// space, NUL disappears, so nothing from the data can end the header line. Leading and trailing
// blanks are dropped. Reuses one buffer per thread.
std::string_view sanitize_header_text(std::string_view in) {
  thread_local std::string buffer;
  buffer.clear();
  bool pending_space = false;
  for (const char c : in) {
    const auto u = static_cast<unsigned char>(c);
    if (u == 0) continue;
    if (u < 0x20 || u == 0x7F || u == ' ') {
      pending_space = true;
      continue;
    }
    if (pending_space && !buffer.empty()) buffer.push_back(' ');
    pending_space = false;
    buffer.push_back(c);
  }
  return buffer;
}

// Addresses and message ids are ASCII tokens: anything else (controls, blanks, 8-bit, brackets)
// is dropped rather than allowed to change the header's structure. With `utf8` (RFC 6532), 8-bit
// bytes stay; they cannot end a header line.
void append_token(std::string_view in, std::string& out, bool utf8 = false) {
  for (const char c : in) {
    const auto u = static_cast<unsigned char>(c);
    if ((u > 0x20 && u < 0x7F && c != '<' && c != '>') || (utf8 && u >= 0x80)) out.push_back(c);
  }
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

bool valid_header_name(std::string_view name) {
  if (name.empty() || name.size() > 76) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return c > 0x20 && c < 0x7F && c != ':'; });
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lx = static_cast<char>(x >= 'A' && x <= 'Z' ? x + 32 : x);
           const auto ly = static_cast<char>(y >= 'A' && y <= 'Z' ? y + 32 : y);
           return lx == ly;
         });
}

bool reserved_header(std::string_view name) {
  constexpr std::array<std::string_view, 8> reserved = {"From",         "To",   "Subject", "Date", "Message-ID",
                                                        "MIME-Version", "Bcc", "Sender"};
  if (name.size() >= 8 && iequals(name.substr(0, 8), "Content-")) return true;
  return std::any_of(reserved.begin(), reserved.end(), [&](std::string_view r) { return iequals(r, name); });
}

// Writes one header field, folding between words so that lines stay short.
class header_writer {
 public:
  header_writer(std::string& out, std::string_view name) : out_(out) {
    out_.append(name);
    out_.append(": ");
    column_ = name.size() + 2;
    start_column_ = column_;
  }

  ~header_writer() { out_.append("\r\n"); }

  header_writer(const header_writer&) = delete;
  header_writer& operator=(const header_writer&) = delete;

  // Plain ASCII text; folds at its blanks, which unfolding restores exactly.
  void text(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
      const auto word_end = std::min(s.find(' ', i + 1), s.size());
      std::string_view word = s.substr(i, word_end - i);  // starts with its blank, except the first
      if (column_ + word.size() > fold_at && column_ > start_column_ && word.front() == ' ') fold();
      // A word longer than a line can hold is cut: the line limit is a hard MUST.
      while (column_ + word.size() > hard_limit) {
        const auto take = hard_limit - column_;
        raw(word.substr(0, take));
        word.remove_prefix(take);
        fold();
        raw(" ");
      }
      raw(word);
      i = word_end;
    }
  }

  // RFC 2047 encoded words, none longer than 75 characters, each on a line within 76, and never
  // splitting a UTF-8 sequence (a word must decode to whole characters on its own).
  void encoded(std::string_view s) {
    bool first = true;
    while (!s.empty()) {
      std::size_t room = first ? line_room() : 0;
      if (room < 20) {  // too little space for a word with one 4-byte character
        fold();
        raw(" ");
        room = line_room();
      } else if (!first) {
        raw(" ");
      }
      const std::size_t max_bytes = (room - word_prefix.size() - word_suffix.size()) / 4 * 3;
      std::size_t take = std::min(max_bytes, s.size());
      while (take < s.size() && take > 0 && is_continuation(s[take])) --take;
      if (take == 0) take = std::min(max_bytes, s.size());  // not UTF-8 at all; just cut
      raw(word_prefix);
      const auto before = out_.size();
      support::append_base64(s.substr(0, take), out_);
      column_ += out_.size() - before;
      raw(word_suffix);
      s.remove_prefix(take);
      first = false;
    }
  }

  // Puts `s` on the current line when it fits, else on a folded one; `s` must start with a blank.
  void token(std::string_view s) {
    if (column_ + s.size() > fold_at && column_ > start_column_) fold();
    raw(s);
  }

  void raw(std::string_view s) {
    out_.append(s);
    column_ += s.size();
  }

 private:
  std::size_t line_room() const {
    return std::min(max_encoded_word, encoded_line > column_ ? encoded_line - column_ : std::size_t{0});
  }

  void fold() {
    out_.append("\r\n");
    column_ = 0;
  }

  std::string& out_;
  std::size_t column_ = 0;
  std::size_t start_column_ = 0;
};

// Text that must become encoded words: 8-bit bytes, something that would read as an encoded word,
// or a word too long to fold.
bool needs_encoding(std::string_view s) {
  if (!is_ascii(s) || s.find("=?") != std::string_view::npos) return true;
  std::size_t run = 0;
  for (const char c : s) {
    run = c == ' ' ? 0 : run + 1;
    if (run > 900) return true;
  }
  return false;
}

void write_unstructured(std::string& out, std::string_view name, std::string_view value, bool encode_when_needed) {
  const auto clean = sanitize_header_text(value);
  header_writer h(out, name);
  if (encode_when_needed ? needs_encoding(clean) : !is_ascii(clean)) {
    h.encoded(clean);
  } else {
    h.text(clean);
  }
}

constexpr std::string_view rfc5322_specials = "()<>[]:;@\\,.\"";

void write_mailbox(std::string& out, std::string_view name, const mailbox& box, bool utf8) {
  const auto display = sanitize_header_text(box.display_name);
  header_writer h(out, name);
  thread_local std::string address;
  address.clear();
  append_token(box.address, address, utf8);
  if (display.empty()) {
    h.raw(address);
    return;
  }
  if (!is_ascii(display) || display.size() > 60 || display.find("=?") != std::string_view::npos) {
    h.encoded(display);
  } else if (display.find_first_of(rfc5322_specials) != std::string_view::npos) {
    thread_local std::string quoted;
    quoted.assign(1, '"');
    for (const char c : display) {
      if (c == '"' || c == '\\') quoted.push_back('\\');
      quoted.push_back(c);
    }
    quoted.push_back('"');
    h.raw(quoted);
  } else {
    h.raw(display);
  }
  thread_local std::string angle;
  angle.assign(" <");
  angle.append(address);
  angle.push_back('>');
  h.token(angle);
}

void append_two_digits(unsigned v, std::string& out) {
  out.push_back(static_cast<char>('0' + v / 10 % 10));
  out.push_back(static_cast<char>('0' + v % 10));
}

// RFC 5322 3.3, always in UTC: "Tue, 14 Nov 2023 22:13:20 +0000".
void write_date(std::string& out, std::chrono::system_clock::time_point tp) {
  using namespace std::chrono;
  constexpr std::array<std::string_view, 7> weekdays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  constexpr std::array<std::string_view, 12> months = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto day = floor<days>(tp);
  const year_month_day ymd{day};
  const hh_mm_ss hms{floor<seconds>(tp - day)};
  out.append("Date: ");
  out.append(weekdays[weekday{day}.c_encoding()]);
  out.append(", ");
  append_two_digits(static_cast<unsigned>(ymd.day()), out);
  out.push_back(' ');
  out.append(months[static_cast<unsigned>(ymd.month()) - 1]);
  out.push_back(' ');
  out.append(std::to_string(static_cast<int>(ymd.year())));
  out.push_back(' ');
  append_two_digits(static_cast<unsigned>(hms.hours().count()), out);
  out.push_back(':');
  append_two_digits(static_cast<unsigned>(hms.minutes().count()), out);
  out.push_back(':');
  append_two_digits(static_cast<unsigned>(hms.seconds().count()), out);
  out.append(" +0000\r\n");
}

// "=_" can never occur in quoted-printable output ('=' is always followed by two hex digits or a
// line break), so a boundary starting with it cannot collide with either body, whatever they hold.
void append_boundary(const email_content& c, std::string& out) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a: stable per message, so output is reproducible
  auto mix = [&h](std::string_view s) {
    for (const char ch : s) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  };
  mix(c.message_id);
  mix(c.to.address);
  mix(c.subject);
  out.append("=_bstk_");
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(hex_digits[(h >> shift) & 15]);
}

void write_part_headers(std::string& out, std::string_view type) {
  out.append("Content-Type: ");
  out.append(type);
  out.append("; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n");
}

void append_body(std::string_view body, std::string& out) {
  append_quoted_printable(body, out);
  if (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0) out.append("\r\n");
}

}  // namespace

void append_quoted_printable(std::string_view in, std::string& out) {
  // Written through a pointer into room reserved up front: every input byte needs at most three
  // output bytes, plus a soft break (three bytes) per line, and a line holds at least 25 input bytes.
  const std::size_t start = out.size();
  out.resize(start + in.size() * 3 + in.size() / 24 * 3 + 16);
  char* p = out.data() + start;
  const std::size_t n = in.size();
  std::size_t column = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = in[i];
    // The common case, printable ASCII or a blank that does not end the line, far from the
    // line's end: copied as it is.
    if (column < 74 && ((c > ' ' && c <= '~' && c != '=') ||
                        (c == ' ' && i + 1 < n && in[i + 1] != '\r' && in[i + 1] != '\n'))) {
      *p++ = c;
      ++column;
      continue;
    }
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < n && in[i + 1] == '\n') ++i;
      *p++ = '\r';
      *p++ = '\n';
      column = 0;
      continue;
    }
    const auto u = static_cast<unsigned char>(c);
    auto line_end = [&] { return i + 1 == n || in[i + 1] == '\r' || in[i + 1] == '\n'; };
    const bool literal = (u >= 33 && u <= 126 && c != '=') || ((c == ' ' || c == '\t') && !line_end());
    const std::size_t width = literal ? 1 : 3;
    // Within a line the soft break '=' needs the 76th column; the line's last character may use it.
    if (column + width > 75 && column + width > (line_end() ? 76u : 75u)) {
      *p++ = '=';
      *p++ = '\r';
      *p++ = '\n';
      column = 0;
    }
    if (literal) {
      *p++ = c;
    } else {
      *p++ = '=';
      *p++ = hex_digits[u >> 4];
      *p++ = hex_digits[u & 15];
    }
    column += width;
  }
  out.resize(static_cast<std::size_t>(p - out.data()));
}

void build_email(const email_content& c, std::string& out) {
  out.reserve(out.size() + 1024 + (c.text.size() + c.html.size()) * 11 / 10);

  write_mailbox(out, "From", c.from, c.smtputf8);
  write_mailbox(out, "To", c.to, c.smtputf8);
  write_unstructured(out, "Subject", c.subject, true);
  write_date(out, c.date);
  const auto id_start = out.size();
  out.append("Message-ID: <");
  const auto id_body = out.size();
  append_token(c.message_id, out);
  if (out.size() == id_body) {
    out.resize(id_start);  // nothing usable: the relay adds one
  } else {
    out.append(">\r\n");
  }
  for (const auto& field : c.extra_headers) {
    if (!valid_header_name(field.name) || reserved_header(field.name)) continue;
    write_unstructured(out, field.name, field.value, false);
  }
  out.append("MIME-Version: 1.0\r\n");

  if (!c.text.empty() && !c.html.empty()) {
    thread_local std::string boundary;
    boundary.clear();
    append_boundary(c, boundary);
    out.append("Content-Type: multipart/alternative; boundary=\"");
    out.append(boundary);
    out.append("\"\r\n\r\n");
    for (const auto& [type, body] : {std::pair{std::string_view("text/plain"), c.text},
                                     std::pair{std::string_view("text/html"), c.html}}) {
      out.append("--");
      out.append(boundary);
      out.append("\r\n");
      write_part_headers(out, type);
      out.append("\r\n");
      append_body(body, out);
    }
    out.append("--");
    out.append(boundary);
    out.append("--\r\n");
    return;
  }

  const bool html_only = c.text.empty() && !c.html.empty();
  write_part_headers(out, html_only ? "text/html" : "text/plain");
  out.append("\r\n");
  if (const auto body = html_only ? c.html : c.text; !body.empty()) append_body(body, out);
}

}  // namespace budstikke::templates
