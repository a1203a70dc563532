#include "adapters/sms_http/protocol.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <ctime>

#include <boost/asio/ip/address.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serializer.hpp>
#include <boost/json/value.hpp>

#include "support/base64.hpp"
#include "support/url.hpp"

namespace budstikke::adapters::sms_http {
namespace json = boost::json;
namespace {

bool unreserved(unsigned char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

void add_field(std::string& out, std::string_view name, std::string_view value) {
  if (!out.empty() && out.back() != '?' && out.back() != '&') out.push_back('&');
  out.append(name);
  out.push_back('=');
  append_form_encoded(out, value);
}

// A header value from data (a sender id): no line breaks, whatever the portal wrote.
std::string header(std::string_view name, std::string_view value) {
  std::string h(name);
  h.append(": ");
  for (char c : value)
    if (c != '\r' && c != '\n' && c != '\0') h.push_back(c);
  return h;
}

void build_kannel(const gateway_config& cfg, const sms_fields& sms, http_request& out) {
  if (cfg.method != http_method::get) {
    // smsbox's POST interface: the text is the body (charset in Content-Type), everything else
    // travels in X-Kannel-* headers. It refuses form-encoded bodies.
    out.url = cfg.url;
    out.body.assign(sms.text);
    out.headers.emplace_back("Content-Type: text/plain; charset=UTF-8");
    out.headers.push_back(header("X-Kannel-Username", cfg.username));
    out.headers.push_back(header("X-Kannel-Password", cfg.password));
    out.headers.push_back(header("X-Kannel-From", sms.from));
    out.headers.push_back(header("X-Kannel-To", sms.to));
    out.headers.emplace_back(sms.ucs2 ? "X-Kannel-Coding: 2" : "X-Kannel-Coding: 0");
    if (!cfg.dlr_mask.empty()) out.headers.push_back(header("X-Kannel-DLR-Mask", cfg.dlr_mask));
    if (!cfg.dlr_url.empty()) out.headers.push_back(header("X-Kannel-DLR-Url", cfg.dlr_url));
    return;
  }
  out.url = cfg.url;
  out.url.push_back(cfg.url.find('?') == std::string::npos ? '?' : '&');
  std::string& fields = out.url;
  add_field(fields, "username", cfg.username);
  add_field(fields, "password", cfg.password);
  add_field(fields, "from", sms.from);
  add_field(fields, "to", sms.to);
  add_field(fields, "text", sms.text);
  // smsbox converts the text from `charset` into the coding: UTF-8 in, GSM or UCS-2 out.
  add_field(fields, "coding", sms.ucs2 ? "2" : "0");
  add_field(fields, "charset", "UTF-8");
  if (!cfg.dlr_mask.empty()) add_field(fields, "dlr-mask", cfg.dlr_mask);
  if (!cfg.dlr_url.empty()) add_field(fields, "dlr-url", cfg.dlr_url);
}

void build_json(const gateway_config& cfg, const sms_fields& sms, http_request& out) {
  out.url = cfg.url;
  unsigned char buffer[1024];
  json::monotonic_resource mr(buffer, sizeof buffer);
  json::object body(&mr);
  if (!cfg.to_field.empty()) body[cfg.to_field] = sms.to;
  if (!cfg.from_field.empty()) body[cfg.from_field] = sms.from;
  if (!cfg.text_field.empty()) body[cfg.text_field] = sms.text;
  if (!cfg.encoding_field.empty()) body[cfg.encoding_field] = sms.ucs2 ? "ucs2" : "gsm7";
  json::serializer sr;
  sr.reset(&body);
  char chunk[1024];
  while (!sr.done()) out.body.append(sr.read(chunk, sizeof chunk));
  out.headers.emplace_back("Content-Type: application/json");
  out.headers.emplace_back("Accept: application/json");
  if (!cfg.bearer_token.empty()) {
    out.headers.emplace_back("Authorization: Bearer " + cfg.bearer_token);
  } else if (!cfg.username.empty()) {
    std::string credentials = cfg.username + ":" + cfg.password;
    std::string header = "Authorization: Basic ";
    support::append_base64(credentials, header);
    out.headers.push_back(std::move(header));
  }
  for (const auto& [name, value] : cfg.headers) out.headers.push_back(header(name, value));
}

// The first line of a body, printable ASCII only and short: a reply for records, not a dump.
void append_first_line(std::string& out, std::string_view body) {
  constexpr std::size_t max = 200;
  std::size_t n = 0;
  for (char c : body) {
    if (c == '\r' || c == '\n' || n == max) break;
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
    ++n;
  }
}

bool starts_with(std::string_view s, std::string_view p) noexcept { return s.substr(0, p.size()) == p; }

}  // namespace

void append_form_encoded(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (unreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
}

void build_request(const gateway_config& cfg, const sms_fields& sms, http_request& out) {
  out.clear();
  out.method = cfg.method;
  if (cfg.kind == gateway_kind::kannel) build_kannel(cfg, sms, out);
  else build_json(cfg, sms, out);
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (value.front() >= '0' && value.front() <= '9') {
    long long secs = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
    if (ec == std::errc::result_out_of_range) return std::chrono::seconds(365LL * 24 * 3600);
    if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
    return std::chrono::seconds(secs);
  }
  if (value.size() > 63) return std::nullopt;
  char text[64];
  std::memcpy(text, value.data(), value.size());
  text[value.size()] = '\0';
  // IMF-fixdate first; the two obsolete forms recipients must still accept (RFC 9110 5.6.7).
  for (const char* format : {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
    std::tm tm{};
    const char* end = ::strptime(text, format, &tm);
    if (end == nullptr || *end != '\0') continue;
    auto at = std::chrono::system_clock::from_time_t(::timegm(&tm));
    if (at <= now) return std::chrono::seconds(0);
    return std::chrono::ceil<std::chrono::seconds>(at - now);
  }
  return std::nullopt;
}

std::optional<std::string> find_json_value(std::string_view body, std::string_view path) {
  unsigned char buffer[4096];
  json::monotonic_resource mr(buffer, sizeof buffer);
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec, &mr);
  if (ec) return std::nullopt;
  const json::value* at = &doc;
  while (!path.empty()) {
    auto dot = path.find('.');
    std::string_view step = path.substr(0, dot);
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
    if (const json::object* o = at->if_object()) {
      at = o->if_contains(step);
    } else if (const json::array* a = at->if_array()) {
      std::size_t i = 0;
      auto [end, err] = std::from_chars(step.data(), step.data() + step.size(), i);
      at = err == std::errc() && end == step.data() + step.size() && i < a->size() ? &(*a)[i] : nullptr;
    } else {
      at = nullptr;
    }
    if (at == nullptr) return std::nullopt;
  }
  if (const json::string* s = at->if_string()) return std::string(*s);
  if (at->is_int64()) return std::to_string(at->get_int64());
  if (at->is_uint64()) return std::to_string(at->get_uint64());
  return std::nullopt;
}

namespace {

// The URL up to its query or fragment.
std::string_view without_query(std::string_view url) { return url.substr(0, url.find_first_of("?#")); }

}  // namespace

std::string gateway_name(const gateway_config& cfg) { return support::without_userinfo(without_query(cfg.url)); }

std::string probe_url(const gateway_config& cfg) { return std::string(without_query(cfg.url)); }

bool credentials_in_clear(const gateway_config& cfg) {
  constexpr std::string_view scheme = "http://";
  std::string_view url = cfg.url;
  if (url.size() < scheme.size() ||
      !std::equal(scheme.begin(), scheme.end(), url.begin(), [](char a, char b) { return a == (b | 0x20); }))
    return false;
  auto authority = url.substr(scheme.size());
  authority = authority.substr(0, authority.find_first_of("/?#"));
  const auto at = authority.rfind('@');
  const bool user_info = at != std::string_view::npos;
  if (!user_info && cfg.password.empty() && cfg.bearer_token.empty()) return false;
  auto host = user_info ? authority.substr(at + 1) : authority;
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.find(']') - 1);
  else host = host.substr(0, host.find(':'));
  std::string lower(host);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "localhost" || lower.ends_with(".localhost")) return false;
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(lower, ec);
  return ec || !address.is_loopback();
}

bool is_gateway_unavailable(long status) noexcept { return status == 502 || status == 504; }

void classify(const gateway_config& cfg, const http_answer& answer, std::chrono::system_clock::time_point now,
              verdict& out) {
  out.reply = std::to_string(answer.status);
  out.reply.push_back(' ');
  append_first_line(out.reply, answer.body);
  out.provider_id.clear();
  out.retry_after = std::chrono::milliseconds(0);
  const long s = answer.status;
  if (s >= 200 && s < 300) {
    if (cfg.kind == gateway_kind::kannel) {
      // smsbox: "0: Accepted for delivery", "3: Queued for later delivery". Another 2xx body
      // took the request but promises nothing we can read: the gateway may have sent it.
      out.result = starts_with(answer.body, "0:") || starts_with(answer.body, "3:") ? outcome::accepted
                                                                                     : outcome::ambiguous;
      return;
    }
    out.result = outcome::accepted;
    if (!cfg.id_path.empty()) {
      if (auto id = find_json_value(answer.body, cfg.id_path)) out.provider_id = std::move(*id);
    }
    return;
  }
  if (s == 429 || s == 503) {
    out.result = outcome::transient;
    if (!answer.retry_after.empty()) {
      if (auto wait = parse_retry_after(answer.retry_after, now)) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*wait);
        out.retry_after = std::min(ms, cfg.max_retry_after);
      }
    }
    // A 503 that names no time is the gateway being unavailable, not an answer about this message.
    if (s == 503 && out.retry_after.count() == 0) out.result = outcome::unsent;
    return;
  }
  if (is_gateway_unavailable(s)) {
    out.result = outcome::unsent;
    return;
  }
  out.result = s >= 500 && s < 600 ? outcome::transient : outcome::permanent;
}

void classify(transport_failure f, std::string_view detail, verdict& out) {
  out.provider_id.clear();
  out.retry_after = std::chrono::milliseconds(0);
  switch (f) {
    case transport_failure::connect:
      out.result = outcome::unsent;
      out.reply = "local: cannot reach the gateway: ";
      break;
    case transport_failure::send:
      out.result = outcome::unsent;
      out.reply = "local: the request could not be sent: ";
      break;
    case transport_failure::timeout_unsent:
      out.result = outcome::unsent;
      out.reply = "local: timed out before the request was sent: ";
      break;
    case transport_failure::timeout_after_send:
      out.result = outcome::ambiguous;
      out.reply = "local: no answer in time after the request was sent: ";
      break;
    case transport_failure::lost_after_send:
      out.result = outcome::ambiguous;
      out.reply = "local: connection lost after the request was sent: ";
      break;
  }
  append_first_line(out.reply, detail);
}

}  // namespace budstikke::adapters::sms_http
