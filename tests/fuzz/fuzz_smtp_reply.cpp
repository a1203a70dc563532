// SMTP reply parser fed in chunks: replies, errors and resets, never a crash or an endless loop.
// The first byte sets the chunk size.
#include <cstdint>
#include <string>
#include <string_view>

#include "adapters/smtp/reply.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t chunk = 1 + data[0] % 64;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  budstikke::adapters::smtp::reply_parser parser;
  std::string summary;
  while (!in.empty()) {
    auto part = in.substr(0, chunk);
    while (!part.empty()) {
      std::size_t used = parser.feed(part);
      if (used > part.size()) __builtin_trap();
      part.remove_prefix(used);
      if (parser.error()) {
        parser.reset();
        part = {};  // a real connection is dropped here
      } else if (parser.done()) {
        const auto& r = parser.get();
        if (r.code < 100 || r.code > 599) __builtin_trap();
        summary.clear();
        budstikke::adapters::smtp::describe(r, summary);
        if (summary.size() > 400) __builtin_trap();
        parser.next();
      } else if (used == 0) {
        break;
      }
    }
    in.remove_prefix(std::min(chunk, in.size()));
  }
  return 0;
}
