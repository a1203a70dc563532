#include "support/url.hpp"

#include <optional>

namespace budstikke::support {
namespace {

// Where the userinfo is: from after "://" (or the start, in a URL without one) to the last '@'.
struct span {
  std::size_t begin, end;
};
std::optional<span> find_userinfo(std::string_view url) {
  const auto scheme = url.find("://");
  const std::size_t begin = scheme == std::string_view::npos ? 0 : scheme + 3;
  const auto at = url.rfind('@');
  if (at == std::string_view::npos || at < begin) return std::nullopt;
  return span{begin, at};
}

}  // namespace

std::string redact_url(std::string_view url) {
  auto u = find_userinfo(url);
  if (!u) return std::string(url);
  const auto userinfo = url.substr(u->begin, u->end - u->begin);
  const auto colon = userinfo.find(':');
  std::string out(url.substr(0, u->begin));
  if (colon != std::string_view::npos) out.append(userinfo.substr(0, colon + 1));
  out.append("***");
  out.append(url.substr(u->end));
  return out;
}

std::string without_userinfo(std::string_view url) {
  auto u = find_userinfo(url);
  if (!u) return std::string(url);
  std::string out(url.substr(0, u->begin));
  out.append(url.substr(u->end + 1));
  return out;
}

}  // namespace budstikke::support
