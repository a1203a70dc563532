// What the JSON outputs share (log lines, `status --json`, `dlq --json`, `run --report`,
// `bench --json`): Boost.JSON builds and writes them; these say how a line ends and how a
// measurement is written.
#pragma once

#include <string>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace budstikke::support {

// `v` rounded to `decimals` places (0 to 9): a whole number (int64) for 0 decimals, else a
// double. Not finite: `v` as it is (json_line writes it as null).
boost::json::value rounded(double v, int decimals);

// The object serialized on one line, ending in '\n': built by Boost.JSON, numbers written as
// people write them (0.235, not Boost.JSON's 2.35E-1).
std::string json_line(const boost::json::object& o);

}  // namespace budstikke::support
