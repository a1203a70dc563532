#include "adapters/delivery.hpp"

namespace budstikke::adapters {

const char* to_string(outcome o) noexcept {
  switch (o) {
    case outcome::accepted: return "accepted";
    case outcome::transient: return "transient";
    case outcome::permanent: return "permanent";
    case outcome::ambiguous: return "ambiguous";
    case outcome::unsent: return "unsent";
  }
  return "unknown";
}

}  // namespace budstikke::adapters
