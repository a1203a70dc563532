#include "support/result.hpp"

#include <stdexcept>

namespace budstikke::support {

void throw_exception_from_error(const failure& f, const boost::source_location&) {
  throw std::runtime_error(f.message);
}

}  // namespace budstikke::support
