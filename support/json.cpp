#include "support/json.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>

#include <boost/json/serialize.hpp>
#include <fmt/format.h>

namespace budstikke::support {
namespace {

// Boost.JSON (1.81) writes every double in exponent form (0.235 as 2.35E-1): valid, but not what
// a person reading a log line or a report expects. Numbers are written here in their shortest
// round-trip form instead (fmt: 0.235, 1e+30); everything else, strings' escaping included, is
// Boost.JSON's.
void write(std::string& out, const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out.push_back(',');
        first = false;
        out += boost::json::serialize(boost::json::string_view(kv.key()));
        out.push_back(':');
        write(out, kv.value());
      }
      out.push_back('}');
      break;
    }
    case boost::json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        write(out, e);
      }
      out.push_back(']');
      break;
    }
    case boost::json::kind::double_: {
      const double d = v.get_double();
      if (std::isfinite(d)) fmt::format_to(std::back_inserter(out), "{}", d);
      else out += "null";  // JSON has no NaN or infinity
      break;
    }
    default:
      out += boost::json::serialize(v);
      break;
  }
}

}  // namespace

boost::json::value rounded(double v, int decimals) {
  if (!std::isfinite(v)) return v;
  if (decimals <= 0) {
    if (std::fabs(v) < 9.2e18) return static_cast<std::int64_t>(std::llround(v));
    return std::round(v);
  }
  const double scale = std::pow(10.0, std::min(decimals, 9));
  return std::round(v * scale) / scale;
}

std::string json_line(const boost::json::object& o) {
  std::string line;
  write(line, o);
  line.push_back('\n');
  return line;
}

}  // namespace budstikke::support
