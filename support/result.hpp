#pragma once
// The one error style of functions that give a value or say why not (parsing input, the CLI's
// Redis operations, compiling a campaign): support::result<T>. The failure carries a code to
// branch on and one line for the user or the log that names what and where (file, line, field,
// campaign, Redis server). See docs/architecture.md, "Errors".

#include <string>
#include <system_error>
#include <utility>

#include <boost/system/result.hpp>

namespace budstikke::support {

struct failure {
  std::error_code code;
  std::string message;
};

// For test frameworks and logs that print a result: its message.
template <class Ostream>
Ostream& operator<<(Ostream& os, const failure& f) {
  return os << f.message;
}

template <class T = void>
using result = boost::system::result<T, failure>;

// A failure of input that is wrong (std::errc::invalid_argument) unless another code is given.
inline failure fail(std::string message, std::error_code code = std::make_error_code(std::errc::invalid_argument)) {
  return failure{code, std::move(message)};
}

// Lets result<T>::value() throw std::runtime_error with the message (start-up, tests).
[[noreturn]] void throw_exception_from_error(const failure& f, const boost::source_location& loc);

}  // namespace budstikke::support
