#include "templates/address.hpp"

#include <cstdlib>

#include <idn2.h>

#include "templates/utf8.hpp"

namespace budstikke::templates {
namespace {

constexpr std::size_t max_address = 254;

bool atext(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '/': case '=': case '?': case '^': case '_': case '`': case '{': case '|': case '}': case '~':
      return true;
    default:
      return false;
  }
}

constexpr std::string_view invalid_local_part = "invalid local part";
constexpr std::string_view needs_quoting =
    "quoted local part with characters that need quoting (blanks, specials, escapes): not supported";

// RFC 5321 local part; with `utf8` also RFC 6531's, where UTF-8 characters count as atext (the
// caller has checked that the bytes are well-formed UTF-8). A quoted local part is taken only when
// its content would do without the quotes: the To: header cannot carry blanks or angle brackets
// as the envelope does, and both must name the same mailbox.
std::optional<std::string_view> local_part_problem(std::string_view local, bool utf8) {
  if (local.empty() || local.size() > 64) return invalid_local_part;
  auto non_ascii = [utf8](unsigned char c) { return utf8 && c >= 0x80; };
  if (local.front() == '"') {
    if (local.size() < 3 || local.back() != '"') return invalid_local_part;
    for (std::size_t i = 1; i + 1 < local.size(); ++i) {
      const auto c = static_cast<unsigned char>(local[i]);
      if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) return invalid_local_part;
      if (!atext(c) && c != '.' && !non_ascii(c)) return needs_quoting;
    }
    return std::nullopt;
  }
  bool previous_dot = true;  // a leading dot is as bad as two in a row
  for (unsigned char c : local) {
    if (c == '.') {
      if (previous_dot) return invalid_local_part;
      previous_dot = true;
    } else if (atext(c) || non_ascii(c)) {
      previous_dot = false;
    } else {
      return invalid_local_part;
    }
  }
  if (previous_dot) return invalid_local_part;
  return std::nullopt;
}

bool valid_domain(std::string_view domain) {
  if (domain.empty() || domain.size() > 253) return false;
  std::size_t labels = 0;
  std::size_t start = 0;
  for (;;) {
    auto dot = domain.find('.', start);
    auto label = domain.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (unsigned char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return false;
    }
    ++labels;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return labels >= 2;
}

std::optional<std::string_view> control_problem(std::string_view address) {
  if (address.empty()) return "empty address";
  if (address.size() > max_address) return "address longer than 254 octets";
  for (unsigned char c : address)
    if (c < 0x20 || c == 0x7f) return "control character in address";
  return std::nullopt;
}

}  // namespace

std::optional<std::string_view> email_address_problem(std::string_view address) {
  if (auto problem = control_problem(address)) return problem;
  if (!utf8::is_ascii(address)) return "non-ASCII address (needs SMTPUTF8 or IDN encoding)";
  auto at = address.rfind('@');
  if (at == std::string_view::npos) return "address has no @";
  if (auto problem = local_part_problem(address.substr(0, at), false)) return problem;
  if (!valid_domain(address.substr(at + 1))) return "invalid domain";
  return std::nullopt;
}

std::optional<std::string_view> prepare_email_address(std::string_view address, std::string& out,
                                                      bool& needs_smtputf8) {
  needs_smtputf8 = false;
  if (auto problem = control_problem(address)) return problem;
  if (!utf8::valid(address)) return "address is not valid UTF-8";
  auto at = address.rfind('@');
  if (at == std::string_view::npos) return "address has no @";
  const auto local = address.substr(0, at);
  const auto domain = address.substr(at + 1);
  needs_smtputf8 = !utf8::is_ascii(local);
  if (auto problem = local_part_problem(local, true)) return problem;
  out.assign(local);
  out.push_back('@');
  if (utf8::is_ascii(domain)) {
    if (!valid_domain(domain)) return "invalid domain";
    out.append(domain);
    return std::nullopt;
  }
  // libidn2 wants a NUL-terminated string; domains are short, so a stack copy does.
  char input[max_address + 1];
  domain.copy(input, domain.size());
  input[domain.size()] = '\0';
  char* ascii = nullptr;
  const int rc = idn2_to_ascii_8z(input, &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
  if (rc != IDN2_OK) {
    idn2_free(ascii);
    return "invalid internationalised domain (IDNA2008)";
  }
  const std::string_view converted(ascii);
  const bool ok = valid_domain(converted);
  if (ok) out.append(converted);
  idn2_free(ascii);
  if (!ok) return "invalid domain";
  if (out.size() > max_address) return "address longer than 254 octets";
  return std::nullopt;
}

std::string_view address_domain(std::string_view address) {
  auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view() : address.substr(at + 1);
}

namespace {

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string> parse_sender(std::string_view text, sender& out) {
  out = {};
  const auto whole = trim_blanks(text);
  std::string_view address = whole;
  const auto open = whole.rfind('<');
  if (!whole.empty() && whole.back() == '>') {
    if (open == std::string_view::npos) return std::string("'>' without '<': write Name <address>");
    address = trim_blanks(whole.substr(open + 1, whole.size() - open - 2));
    auto name = trim_blanks(whole.substr(0, open));
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
      name = name.substr(1, name.size() - 2);
      for (std::size_t i = 0; i < name.size(); ++i) {
        if (name[i] == '\\' && i + 1 < name.size()) ++i;
        else if (name[i] == '"') return std::string("a '\"' inside the quoted name: escape it as \\\"");
        out.name.push_back(name[i]);
      }
    } else {
      if (name.find('"') != std::string_view::npos)
        return std::string("unbalanced '\"' in the name: write \"Name\" <address>");
      out.name.assign(name);
    }
    for (unsigned char c : out.name)
      if (c < 0x20 || c == 0x7f) return std::string("control character in the sender's name");
    if (!utf8::valid(out.name)) return std::string("the sender's name is not valid UTF-8");
  } else if (open != std::string_view::npos || whole.find('>') != std::string_view::npos) {
    return std::string("write the sender as address or as Name <address>");
  }
  if (auto problem = email_address_problem(address))
    return std::string(*problem) + " (write the sender as address or as Name <address>)";
  out.address.assign(address);
  return std::nullopt;
}

}  // namespace budstikke::templates
