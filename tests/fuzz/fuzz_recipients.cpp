// Recipient files: every line is either a record or a problem with a reason; never a crash.
// The first byte picks JSON Lines or CSV.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cli/recipients_file.hpp"

using namespace budstikke::cli;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  auto format = data[0] & 1 ? recipients_format::csv : recipients_format::jsonl;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (format == recipients_format::jsonl) {
    recipient_record r;
    if (auto why = parse_jsonl_line(text, r); why && why->empty()) __builtin_trap();
  }
  try {
    auto reader = recipients_reader::from_text(std::move(text), format);
    recipient_record r;
    std::optional<line_problem> problem;
    std::size_t last_line = 0;
    while (reader->next(r, problem)) {
      std::size_t line = problem ? problem->line : r.line;
      if (line <= last_line) __builtin_trap();  // line numbers only go forward
      last_line = line;
      if (problem && problem->reason.empty()) __builtin_trap();
      if (!problem && r.to.empty()) __builtin_trap();
    }
  } catch (const std::runtime_error&) {
    // An unusable CSV header is reported by exception at open time.
  }
  return 0;
}
