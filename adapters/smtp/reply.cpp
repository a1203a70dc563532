#include "adapters/smtp/reply.hpp"

#include <cstring>

namespace budstikke::adapters::smtp {
namespace {

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// Reads up to `max_digits` digits at `pos`; false when there are none or too many.
bool read_number(std::string_view s, std::size_t& pos, std::size_t max_digits, std::uint16_t& out) {
  std::size_t start = pos;
  std::uint32_t v = 0;
  while (pos < s.size() && is_digit(s[pos]) && pos - start < max_digits + 1) {
    v = v * 10 + static_cast<std::uint32_t>(s[pos] - '0');
    ++pos;
  }
  std::size_t n = pos - start;
  if (n == 0 || n > max_digits) return false;
  out = static_cast<std::uint16_t>(v);
  return true;
}

// "class.subject.detail" followed by a space or the end (RFC 3463: 1-3 digits each).
enhanced_status parse_enhanced(std::string_view text, int reply_class) {
  std::size_t pos = 0;
  std::uint16_t cls = 0, subject = 0, detail = 0;
  if (!read_number(text, pos, 1, cls) || pos >= text.size() || text[pos++] != '.') return {};
  if (!read_number(text, pos, 3, subject) || pos >= text.size() || text[pos++] != '.') return {};
  if (!read_number(text, pos, 3, detail)) return {};
  if (pos < text.size() && text[pos] != ' ') return {};
  if (cls != reply_class || (cls != 2 && cls != 4 && cls != 5)) return {};
  return {static_cast<std::uint8_t>(cls), subject, detail};
}

}  // namespace

void describe(const reply& r, std::string& out, std::size_t max_chars) {
  out.clear();
  char code[4] = {static_cast<char>('0' + r.code / 100), static_cast<char>('0' + r.code / 10 % 10),
                  static_cast<char>('0' + r.code % 10), ' '};
  out.append(code, r.text.empty() ? 3 : 4);
  std::size_t room = max_chars > out.size() ? max_chars - out.size() : 0;
  std::size_t start = out.size();
  out.append(r.text, 0, room);
  for (std::size_t i = start; i < out.size(); ++i) {
    // Control characters never reach records or logs verbatim.
    if (static_cast<unsigned char>(out[i]) < 0x20 || out[i] == 0x7f) out[i] = ' ';
  }
}

reply_parser::reply_parser() {
  partial_.reserve(256);
  reply_.text.reserve(256);
}

void reply_parser::next() noexcept {
  reply_.code = 0;
  reply_.enhanced = {};
  reply_.text.clear();
  reply_.lines = 0;
  done_ = false;
}

void reply_parser::reset() noexcept {
  next();
  partial_.clear();
  error_.clear();
}

void reply_parser::fail(smtp::error e) noexcept {
  error_ = e;
  done_ = false;
}

std::size_t reply_parser::feed(std::string_view in) {
  std::size_t used = 0;
  while (!done_ && !error_ && used < in.size()) {
    const char* start = in.data() + used;
    std::size_t left = in.size() - used;
    const void* nl = std::memchr(start, '\n', left);
    if (nl == nullptr) {
      if (partial_.size() + left > max_line) {
        fail(error::reply_line_too_long);
        return in.size();
      }
      partial_.append(start, left);
      return in.size();
    }
    std::size_t n = static_cast<const char*>(nl) - start + 1;
    used += n;
    if (partial_.size() + n > max_line) {
      fail(error::reply_line_too_long);
      return used;
    }
    if (partial_.empty()) {
      on_line(std::string_view(start, n - 1));  // the common case: the line is whole in `in`
    } else {
      partial_.append(start, n - 1);
      on_line(partial_);
      partial_.clear();
    }
  }
  return used;
}

void reply_parser::on_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() < 3 || line[0] < '1' || line[0] > '5' || !is_digit(line[1]) || !is_digit(line[2])) {
    fail(error::malformed_reply);
    return;
  }
  bool last = true;
  if (line.size() > 3) {
    if (line[3] == '-') {
      last = false;
    } else if (line[3] != ' ') {
      fail(error::malformed_reply);
      return;
    }
  }
  auto code = static_cast<std::uint16_t>((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
  if (reply_.lines > 0 && code != reply_.code) {
    fail(error::malformed_reply);
    return;
  }
  if (reply_.lines >= max_lines) {
    fail(error::reply_too_many_lines);
    return;
  }
  std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view{};
  if (reply_.lines == 0) {
    reply_.code = code;
    reply_.enhanced = parse_enhanced(text, code / 100);
  } else {
    reply_.text.push_back('\n');
  }
  reply_.text.append(text);
  ++reply_.lines;
  done_ = last;
}

}  // namespace budstikke::adapters::smtp
