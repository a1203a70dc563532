#pragma once

// SMS text analysis and encoding (3GPP TS 23.038, "GSM 03.38"), sans-io.
//
// A text goes out in the GSM 7-bit default alphabet when every character is in it or in its
// extension table (an extension character is an escape pair: two septets), otherwise in UCS-2
// (UTF-16 code units; a character outside the BMP is a surrogate pair, two units). One segment
// holds 160 septets or 70 units; a concatenated message holds 153 septets or 67 units per
// segment (the rest is the concatenation header). Segments never split an escape pair or a
// surrogate pair.
//
// Optional normalisation replaces typographic characters (« » “ ” ’ – — … and a few more) with
// GSM equivalents, but only when that makes the whole text GSM: a text that needs UCS-2 anyway
// keeps its characters.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace budstikke::templates::sms {

enum class encoding : std::uint8_t { gsm7, ucs2 };
std::string_view to_string(encoding e);

inline constexpr std::size_t gsm7_single = 160, gsm7_part = 153;
inline constexpr std::size_t ucs2_single = 70, ucs2_part = 67;

// One normalisation rule: a character and the GSM text that replaces it.
struct replacement {
  std::string_view from;  // UTF-8
  std::string_view to;
};
// Every rule, in a fixed order; `message::change_counts` is indexed like this.
extern const std::array<replacement, 18> replacements;

struct change {
  std::string_view from, to;
  std::uint32_t count;
};

// An analysed message. Reuse one object: analysing into it keeps the buffers' capacity.
class message {
 public:
  encoding coding() const { return coding_; }
  // Septets (GSM 7-bit, an extension character counting two) or UTF-16 code units (UCS-2).
  std::size_t units() const { return units_; }
  std::size_t segments() const { return starts_.size(); }
  // The text as it is sent (normalised when normalisation applied), UTF-8.
  const std::string& text() const { return text_; }
  // Byte offsets into text() where each segment starts (the first is 0).
  const std::vector<std::size_t>& segment_starts() const { return starts_; }
  std::string_view segment(std::size_t i) const;

  // What normalisation changed, in the order of `replacements`; empty when nothing changed.
  std::vector<change> changes() const;
  bool normalised() const { return normalised_; }
  // `“ -> " ×2, … -> ... ×1` (empty when nothing changed).
  std::string describe_changes() const;

 private:
  friend std::optional<std::string_view> analyse(std::string_view, bool, message&);
  encoding coding_ = encoding::gsm7;
  std::size_t units_ = 0;
  bool normalised_ = false;
  std::string text_;
  std::vector<std::size_t> starts_;
  std::array<std::uint32_t, replacements.size()> change_counts_{};
};

// Analyses UTF-8 `text` into `out`: encoding, units, segments and their split points, with
// typographic characters normalised when `normalise` is set. The reason when `text` is not
// valid UTF-8 (`out` is then unspecified). Allocates only to grow `out`'s buffers.
std::optional<std::string_view> analyse(std::string_view text, bool normalise, message& out);

// The message's payload: for GSM 7-bit one unpacked septet per byte (an extension character as
// 0x1B and its code), for UCS-2 big-endian UTF-16. Appended to `out`.
void encode(const message& m, std::string& out);

}  // namespace budstikke::templates::sms
