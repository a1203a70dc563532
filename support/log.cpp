#include "support/log.hpp"

#include <atomic>
#include <cstdio>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>

#include "support/json.hpp"
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

void write(level l, std::string_view message, std::initializer_list<field> fields) {
  if (l < min_level.load(std::memory_order_relaxed)) return;
  unsigned char buffer[2048];
  boost::json::monotonic_resource arena(buffer, sizeof buffer);
  boost::json::object line(&arena);
  line["ts"] = support::now_rfc3339();
  line["level"] = name(l);
  line["msg"] = message;
  for (const auto& f : fields) {
    if (auto* s = std::get_if<std::string_view>(&f.value)) line[f.key] = *s;
    else if (auto* i = std::get_if<long long>(&f.value)) line[f.key] = *i;
    else line[f.key] = support::rounded(std::get<double>(f.value), 3);
  }
  // One write per line keeps lines from different shards whole.
  const std::string text = support::json_line(line);
  std::fwrite(text.data(), 1, text.size(), stderr);
}

}  // namespace budstikke::log
