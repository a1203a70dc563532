#include "support/log.hpp"

#include <atomic>
#include <cstdio>

#include <fmt/format.h>

#include "support/rfc3339.hpp"

namespace budstikke::log {
namespace {

std::atomic<level> min_level{level::info};

const char* name(level l) {
  switch (l) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
  }
  return "info";
}

}  // namespace

void set_min_level(level l) { min_level = l; }

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

void write(level l, std::string_view message, std::initializer_list<field> fields) {
  if (l < min_level.load(std::memory_order_relaxed)) return;
  std::string line = "{\"ts\":";
  append_json_string(line, support::now_rfc3339());
  line += ",\"level\":\"";
  line += name(l);
  line += "\",\"msg\":";
  append_json_string(line, message);
  for (const auto& f : fields) {
    line.push_back(',');
    append_json_string(line, f.key);
    line.push_back(':');
    if (auto* s = std::get_if<std::string_view>(&f.value)) append_json_string(line, *s);
    else if (auto* i = std::get_if<long long>(&f.value)) line += std::to_string(*i);
    else line += fmt::format("{:.3f}", std::get<double>(f.value));
  }
  line += "}\n";
  // One write per line keeps lines from different shards whole.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace budstikke::log
