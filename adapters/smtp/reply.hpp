// Sans-io parser for SMTP server replies (RFC 5321 4.2), fed arbitrary byte chunks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "adapters/smtp/error.hpp"

namespace budstikke::adapters::smtp {

// RFC 3463 enhanced status code ("5.1.1"); cls == 0 when the reply carries none.
struct enhanced_status {
  std::uint8_t cls = 0;
  std::uint16_t subject = 0;
  std::uint16_t detail = 0;
  explicit operator bool() const noexcept { return cls != 0; }
};

struct reply {
  std::uint16_t code = 0;    // 3-digit reply code, e.g. 250
  enhanced_status enhanced;  // taken from the first line, when present and of the same class
  std::string text;          // the text of every line (after "NNN-" / "NNN "), joined with '\n'
  std::uint16_t lines = 0;

  int cls() const noexcept { return code / 100; }  // 2 ok, 3 intermediate, 4 transient, 5 permanent
};

// One-line summary for records: "550 5.1.1 text text", at most max_chars (lines joined with ' ').
void describe(const reply& r, std::string& out, std::size_t max_chars = 400);

class reply_parser {
 public:
  static constexpr std::size_t max_line = 4096;  // bytes including CRLF
  static constexpr std::size_t max_lines = 128;

  reply_parser();

  // Consumes bytes of `in` up to the end of one reply (or all of `in`). Returns how many were
  // consumed. Afterwards either done() (read get(), then next()), error(), or more input is needed.
  std::size_t feed(std::string_view in);

  bool done() const noexcept { return done_; }
  std::error_code error() const noexcept { return error_; }
  const reply& get() const noexcept { return reply_; }

  // Forget the completed reply and start on the next one; buffers keep their capacity.
  void next() noexcept;
  // Also forgets a partial line and an error (a new connection).
  void reset() noexcept;

 private:
  void on_line(std::string_view line);
  void fail(smtp::error e) noexcept;

  reply reply_;
  std::string partial_;  // an incomplete line carried over between chunks
  bool done_ = false;
  std::error_code error_;
};

}  // namespace budstikke::adapters::smtp
