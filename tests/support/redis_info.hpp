// Numbers from Redis's INFO text, for tests that check what the server saw.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace budstikke::testing {

// A number from an INFO line such as `cmdstat_evalsha:calls=7,usec=...` (line "cmdstat_evalsha",
// field "calls") or `errorstat_NOSCRIPT:count=2`; 0 when the line is absent (Redis lists only
// what happened). An empty `field` reads a line that is one number (`total_connections_received`).
inline std::int64_t info_number(std::string_view info, std::string_view line, std::string_view field) {
  const std::string head = std::string(line) + ":";
  std::size_t at = 0;
  while ((at = info.find(head, at)) != std::string_view::npos && at != 0 && info[at - 1] != '\n') ++at;
  if (at == std::string_view::npos) return 0;
  auto rest = info.substr(at + head.size());
  rest = rest.substr(0, rest.find_first_of("\r\n"));
  if (field.empty()) {  // a plain line such as `total_connections_received:12`
    std::int64_t v = 0;
    std::from_chars(rest.data(), rest.data() + rest.size(), v);
    return v;
  }
  const std::string key = std::string(field) + "=";
  for (std::size_t from = 0; from < rest.size();) {
    auto comma = rest.find(',', from);
    auto item = rest.substr(from, comma == std::string_view::npos ? std::string_view::npos : comma - from);
    if (item.substr(0, key.size()) == key) {
      std::int64_t v = 0;
      std::from_chars(item.data() + key.size(), item.data() + item.size(), v);
      return v;
    }
    if (comma == std::string_view::npos) break;
    from = comma + 1;
  }
  return 0;
}

}  // namespace budstikke::testing
