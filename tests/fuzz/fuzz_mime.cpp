// MIME building with hostile text in every field: the output must stay a safe message — CRLF
// line endings only, no line over 998 octets, and no header beyond the ones the builder writes.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "templates/mime.hpp"

using namespace budstikke::templates;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  for (int i = 0; i < 6; ++i) {
    auto nul = in.find('\0');
    parts.push_back(in.substr(0, nul));
    in = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  }
  const header_field extra[] = {{"X-Budstikke-Campaign", parts[5]}};
  email_content c{
      .from = {parts[0], "nyheter@forbundet.example"},
      .to = {parts[1], "kari@avd1.example"},
      .subject = parts[2],
      .text = parts[3],
      .html = parts[4],
      .message_id = "c.1-0.abc@forbundet.example",
      .date = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000)),
      .extra_headers = extra,
  };
  std::string out;
  build_email(c, out);

  std::size_t start = 0, header_lines = 0;
  bool in_header = true;
  while (start < out.size()) {
    auto lf = out.find('\n', start);
    if (lf == std::string::npos) __builtin_trap();            // the last line ends in CRLF too
    if (lf == start || out[lf - 1] != '\r') __builtin_trap();  // LF only after CR
    auto line = std::string_view(out).substr(start, lf - 1 - start);
    if (line.size() > 998) __builtin_trap();
    if (line.find('\r') != std::string_view::npos) __builtin_trap();  // no bare CR
    if (line.find('\0') != std::string_view::npos) __builtin_trap();
    if (in_header) {
      if (line.empty()) {
        in_header = false;
      } else if (line[0] != ' ' && line[0] != '\t') {
        ++header_lines;
        auto colon = line.find(':');
        if (colon == std::string_view::npos) __builtin_trap();
        auto name = line.substr(0, colon);
        static const std::string_view allowed[] = {"From", "To", "Subject", "Date", "Message-ID",
                                                   "X-Budstikke-Campaign", "MIME-Version", "Content-Type",
                                                   "Content-Transfer-Encoding"};
        bool ok = false;
        for (auto a : allowed) ok = ok || name == a;
        if (!ok) __builtin_trap();  // a header created from data
      }
    }
    start = lf + 1;
  }
  if (in_header || header_lines > 9) __builtin_trap();
  return 0;
}
