// Recipient files for `enqueue`: JSON Lines (one object per line) or CSV with a header row.
// `to` is required, `id` (member id) optional, every other field becomes a template variable.
// Problems are reported per line with its number and the reason; nothing is dropped silently.
#pragma once

#include <cstddef>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace budstikke::cli {

struct recipient_record {
  std::size_t line = 0;     // 1-based line where the record starts
  std::string to;
  std::string member;
  std::string data_json;    // JSON object of the remaining fields
};

struct line_problem {
  std::size_t line = 0;
  std::string reason;
};

enum class recipients_format { jsonl, csv };

// Parses one JSON Lines line into `out` (out.line is left as is); the reason on failure.
std::optional<std::string> parse_jsonl_line(std::string_view line, recipient_record& out);

class recipients_reader {
 public:
  // Format from the extension: .csv is CSV, anything else JSON Lines. Throws std::runtime_error
  // naming the file when it cannot be opened or a CSV header is unusable.
  static std::unique_ptr<recipients_reader> open(const std::string& path);
  // Reads from an in-memory text (tests, fuzzing).
  static std::unique_ptr<recipients_reader> from_text(std::string text, recipients_format format);

  virtual ~recipients_reader() = default;
  // Next record: true with `out` filled, or true with `problem` set (the line is bad), or false at
  // the end. Blank lines are skipped.
  virtual bool next(recipient_record& out, std::optional<line_problem>& problem) = 0;
};

}  // namespace budstikke::cli
