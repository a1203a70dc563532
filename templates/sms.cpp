#include "templates/sms.hpp"

#include <fmt/format.h>

#include "templates/utf8.hpp"

namespace budstikke::templates::sms {

const std::array<replacement, 18> replacements = {{
    {"\u00AB", "\""}, {"\u00BB", "\""}, {"\u201C", "\""}, {"\u201D", "\""}, {"\u201E", "\""},
    {"\u2018", "'"},  {"\u2019", "'"},  {"\u201A", "'"},  {"\u2039", "'"},  {"\u203A", "'"},
    {"\u2013", "-"},  {"\u2014", "-"},  {"\u2026", "..."},
    {"\u00A0", " "},  {"\u202F", " "},  {"\u2009", " "},  {"\u2010", "-"},  {"\u2212", "-"},
}};

namespace {

// The default alphabet in septet order; 0x1B is the escape to the extension table.
constexpr char32_t basic_alphabet[] =
    U"@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\uFFFFÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    U"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
static_assert(sizeof(basic_alphabet) / sizeof(char32_t) == 129);

struct extension_char {
  std::uint8_t code;
  char32_t cp;
};
constexpr extension_char extension_table[] = {{0x0A, U'\f'}, {0x14, U'^'}, {0x28, U'{'}, {0x29, U'}'},
                                              {0x2F, U'\\'}, {0x3C, U'['}, {0x3D, U'~'}, {0x3E, U']'},
                                              {0x40, U'|'},  {0x65, U'€'}};
constexpr char32_t euro = U'€';

constexpr char32_t replacement_cp[] = {0x00AB, 0x00BB, 0x201C, 0x201D, 0x201E, 0x2018, 0x2019, 0x201A, 0x2039,
                                       0x203A, 0x2013, 0x2014, 0x2026, 0x00A0, 0x202F, 0x2009, 0x2010, 0x2212};
static_assert(std::size(replacement_cp) == replacements.size());

// Per code point below 0x400 (every GSM character but € is there): 0 not GSM, 1 default
// alphabet (one septet), 2 extension table (two septets), rule_flag|r normalised by rule r.
constexpr std::uint8_t rule_flag = 0x80;
constexpr std::size_t table_size = 0x400;

struct tables {
  std::array<std::uint8_t, table_size> cls{};
  std::array<std::uint8_t, table_size> code{};  // septet, or the extension code
};

constexpr tables make_tables() {
  tables t;
  for (std::uint8_t s = 0; s < 128; ++s) {
    const char32_t cp = basic_alphabet[s];
    if (cp < table_size) {
      t.cls[cp] = 1;
      t.code[cp] = s;
    }
  }
  for (const auto& e : extension_table) {
    if (e.cp < table_size) {
      t.cls[e.cp] = 2;
      t.code[e.cp] = e.code;
    }
  }
  for (std::uint8_t r = 0; r < std::size(replacement_cp); ++r)
    if (replacement_cp[r] < table_size) t.cls[replacement_cp[r]] = rule_flag | r;
  return t;
}
constexpr tables gsm = make_tables();

constexpr std::uint8_t classify(char32_t cp) {
  if (cp < table_size) return gsm.cls[cp];
  if (cp == euro) return 2;
  if (cp >= 0x2000 && cp <= 0x2212) {
    for (std::uint8_t r = 0; r < std::size(replacement_cp); ++r)
      if (replacement_cp[r] == cp) return rule_flag | r;
  }
  return 0;
}

constexpr std::string_view invalid_text = "the SMS text is not valid UTF-8";

// Greedy split: a character whose cost does not fit the current segment starts the next.
template <typename Cost>
void split(std::string_view text, std::size_t units, std::size_t single, std::size_t part, Cost cost,
           std::vector<std::size_t>& starts) {
  starts.push_back(0);
  if (units <= single) return;
  std::size_t used = 0, i = 0;
  while (i < text.size()) {
    const std::size_t start = i;
    const std::size_t c = cost(i);
    if (used + c > part) {
      starts.push_back(start);
      used = 0;
    }
    used += c;
  }
}

}  // namespace

std::string_view to_string(encoding e) { return e == encoding::gsm7 ? "GSM-7" : "UCS-2"; }

std::string_view message::segment(std::size_t i) const {
  const std::size_t begin = starts_[i];
  const std::size_t end = i + 1 < starts_.size() ? starts_[i + 1] : text_.size();
  return std::string_view(text_).substr(begin, end - begin);
}

std::vector<change> message::changes() const {
  std::vector<change> out;
  for (std::size_t r = 0; r < replacements.size(); ++r)
    if (change_counts_[r]) out.push_back({replacements[r].from, replacements[r].to, change_counts_[r]});
  return out;
}

std::string message::describe_changes() const {
  std::string out;
  for (std::size_t r = 0; r < replacements.size(); ++r) {
    if (!change_counts_[r]) continue;
    if (!out.empty()) out += ", ";
    // Invisible spaces are named by their code point.
    if (replacements[r].to == " ") out += fmt::format("U+{:04X}", static_cast<std::uint32_t>(replacement_cp[r]));
    else out += replacements[r].from;
    out += fmt::format(" -> {} ×{}", replacements[r].to, change_counts_[r]);
  }
  return out;
}

std::optional<std::string_view> analyse(std::string_view in, bool normalise, message& out) {
  out.text_.clear();
  out.starts_.clear();
  out.change_counts_.fill(0);
  out.normalised_ = false;

  std::size_t septets = 0, ucs2_units = 0;
  bool outside_gsm = false, any_rule = false;
  for (std::size_t i = 0; i < in.size();) {
    const auto b = static_cast<unsigned char>(in[i]);
    char32_t cp = b;
    if (b < 0x80) {
      ++i;
    } else if ((cp = utf8::next(in, i)) == utf8::invalid) {
      return invalid_text;
    }
    ucs2_units += cp >= 0x10000 ? 2 : 1;
    const std::uint8_t k = classify(cp);
    if (k == 0) {
      outside_gsm = true;
    } else if (k & rule_flag) {
      any_rule = true;
      septets += replacements[k & ~rule_flag].to.size();
    } else {
      septets += k;
    }
  }
  if (any_rule && !normalise) outside_gsm = true;

  if (outside_gsm) {
    out.coding_ = encoding::ucs2;
    out.units_ = ucs2_units;
    out.text_.assign(in);
    split(out.text_, ucs2_units, ucs2_single, ucs2_part,
          [&](std::size_t& i) -> std::size_t {
            if (static_cast<unsigned char>(out.text_[i]) < 0x80) return ++i, 1;
            return utf8::next(out.text_, i) >= 0x10000 ? 2 : 1;
          },
          out.starts_);
    return std::nullopt;
  }

  out.coding_ = encoding::gsm7;
  out.units_ = septets;
  if (any_rule) {
    out.normalised_ = true;
    out.text_.reserve(in.size());
    std::size_t copied = 0;  // unchanged bytes are copied in runs
    for (std::size_t i = 0; i < in.size();) {
      if (static_cast<unsigned char>(in[i]) < 0x80) {
        ++i;
        continue;
      }
      const std::size_t start = i;
      const std::uint8_t k = classify(utf8::next(in, i));
      if (k & rule_flag) {
        out.text_.append(in.substr(copied, start - copied));
        ++out.change_counts_[k & ~rule_flag];
        out.text_.append(replacements[k & ~rule_flag].to);
        copied = i;
      }
    }
    out.text_.append(in.substr(copied));
  } else {
    out.text_.assign(in);
  }
  split(out.text_, septets, gsm7_single, gsm7_part,
        [&](std::size_t& i) -> std::size_t {
          const auto b = static_cast<unsigned char>(out.text_[i]);
          if (b < 0x80) return ++i, gsm.cls[b];
          return classify(utf8::next(out.text_, i));
        },
        out.starts_);
  return std::nullopt;
}

void encode(const message& m, std::string& out) {
  const std::string_view text = m.text();
  if (m.coding() == encoding::gsm7) {
    for (std::size_t i = 0; i < text.size();) {
      const auto b = static_cast<unsigned char>(text[i]);
      const char32_t cp = b < 0x80 ? (++i, b) : utf8::next(text, i);
      const std::uint8_t k = classify(cp);
      if (k == 2) out.push_back('\x1B');
      out.push_back(static_cast<char>(cp == euro ? 0x65 : gsm.code[cp]));
    }
    return;
  }
  auto unit = [&out](std::uint32_t u) {
    out.push_back(static_cast<char>(u >> 8));
    out.push_back(static_cast<char>(u & 0xFF));
  };
  for (std::size_t i = 0; i < text.size();) {
    const char32_t cp = utf8::next(text, i);
    if (cp >= 0x10000) {
      unit(0xD800 + ((cp - 0x10000) >> 10));
      unit(0xDC00 + ((cp - 0x10000) & 0x3FF));
    } else {
      unit(cp);
    }
  }
}

}  // namespace budstikke::templates::sms
