#include "support/json.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <boost/json/serialize.hpp>

namespace budstikke::support {

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
  std::string line = boost::json::serialize(o);
  line.push_back('\n');
  return line;
}

}  // namespace budstikke::support
