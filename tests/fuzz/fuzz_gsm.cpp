// SMS analysis: any UTF-8 (or not) text gets an encoding and segments whose bounds hold, or an error.
#include <cstdint>
#include <string>
#include <string_view>

#include "templates/sms.hpp"

using namespace budstikke::templates::sms;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  bool normalise = data[0] & 1;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  message m;
  if (auto error = analyse(text, normalise, m)) {
    if (error->empty()) __builtin_trap();
    return 0;
  }
  std::size_t single = m.coding() == encoding::gsm7 ? 160 : 70;
  std::size_t multi = m.coding() == encoding::gsm7 ? 153 : 67;
  if (m.units() == 0 && m.segments() > 1) __builtin_trap();
  if (m.units() <= single && m.segments() > 1) __builtin_trap();
  if (m.units() > single && m.segments() * multi < m.units()) __builtin_trap();
  // Segments cover the text, in order.
  std::size_t covered = 0;
  for (std::size_t i = 0; i < m.segments(); ++i) covered += m.segment(i).size();
  if (covered != m.text().size()) __builtin_trap();
  std::string out;
  encode(m, out);
  return 0;
}
