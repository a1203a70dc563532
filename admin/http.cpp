#include "admin/http.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

#include <boost/beast/http/error.hpp>

#include "support/form_urlencoded.hpp"

namespace budstikke::admin {
namespace http = boost::beast::http;

namespace {

response start_response(const request& req) {
  response res;
  res.version(req.version() == 10 ? 10 : 11);
  res.keep_alive(req.keep_alive());
  res.set(http::field::server, "budstikke");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  return res;
}

std::string_view target_of(const request& req) { return {req.target().data(), req.target().size()}; }

std::string_view path_of(const request& req) {
  auto target = target_of(req);
  return target.substr(0, target.find('?'));
}

// The value of `name` in an application/x-www-form-urlencoded string (a query or a form body).
// A malformed %-escape stays as it is, as browsers read forms (the token then does not verify).
std::optional<std::string> form_value(std::string_view form, std::string_view name) {
  while (!form.empty()) {
    auto amp = form.find('&');
    auto pair = form.substr(0, amp);
    form = amp == std::string_view::npos ? std::string_view{} : form.substr(amp + 1);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) != name || eq == std::string_view::npos) continue;
    std::string value;
    support::decode_form_component(pair.substr(eq + 1), value, support::malformed_escape::keep);
    return value;
  }
  return std::nullopt;
}

// The token of POST /unsubscribe: `t` (or `token`) in the query, as the List-Unsubscribe URL
// carries it, or in a form body.
std::optional<std::string> unsubscribe_token(const request& req) {
  auto target = target_of(req);
  auto q = target.find('?');
  auto query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  for (auto name : {"t", "token"}) {
    if (auto v = form_value(query, name)) return v;
    if (auto v = form_value(req.body(), name)) return v;
  }
  return std::nullopt;
}

decision answer(response res, http::status status, std::string body) {
  res.result(status);
  res.body() = std::move(body);
  finish(res);
  return {action::respond, std::move(res), {}};
}

}  // namespace

decision route(const request& req, unsigned served, bool unsubscribe_enabled) {
  response res = start_response(req);
  const auto path = path_of(req);
  const bool get = req.method() == http::verb::get;
  if (path == "/unsubscribe" && (served & serves_unsubscribe)) {
    if (req.method() != http::verb::post) {
      res.set(http::field::allow, "POST");
      return answer(std::move(res), http::status::method_not_allowed,
                    "POST /unsubscribe?t=TOKEN unsubscribes; GET never changes anything\n");
    }
    if (!unsubscribe_enabled)
      return answer(std::move(res), http::status::not_found,
                    "unsubscribe is not enabled: no unsubscribe secret configured\n");
    auto token = unsubscribe_token(req);
    if (!token) return answer(std::move(res), http::status::bad_request, "no token: POST /unsubscribe?t=TOKEN\n");
    return {action::unsubscribe, std::move(res), std::move(*token)};
  }
  const bool probe = (path == "/healthz" || path == "/readyz") && (served & serves_probes);
  const bool metrics = path == "/metrics" && (served & serves_metrics);
  if (!probe && !metrics) return answer(std::move(res), http::status::not_found, "not found\n");
  if (!get) {
    res.set(http::field::allow, "GET");
    return answer(std::move(res), http::status::method_not_allowed, "only GET\n");
  }
  if (path == "/healthz") return answer(std::move(res), http::status::ok, "ok\n");
  if (metrics) {
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.result(http::status::ok);
    return {action::metrics, std::move(res), {}};
  }
  return {action::readiness, std::move(res), {}};
}

std::optional<response> parse_failure_response(const boost::system::error_code& ec) {
  unsigned status = 400;
  std::string_view reason = "malformed request";
  if (ec == http::error::header_limit) {
    status = 431;
    reason = "request header fields too large (at most 8 KiB)";
  } else if (ec == http::error::body_limit) {
    status = 413;
    reason = "request body too large (at most 4 KiB)";
  } else if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
             ec.category() != http::make_error_code(http::error::bad_method).category()) {
    return std::nullopt;
  }
  response res;
  res.version(11);
  res.result(status);
  res.keep_alive(false);
  res.set(http::field::server, "budstikke");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  res.body() = std::string(reason) + "\n";
  finish(res);
  return res;
}

std::string_view busy_response() {
  return "HTTP/1.1 503 Service Unavailable\r\nServer: budstikke\r\nContent-Type: text/plain; charset=utf-8\r\n"
         "Retry-After: 1\r\nConnection: close\r\nContent-Length: 5\r\n\r\nbusy\n";
}

void too_many_requests(response& res, std::chrono::seconds retry_after) {
  res.result(http::status::too_many_requests);
  res.set(http::field::retry_after, std::to_string(retry_after.count()));
  res.body() = "too many unsubscribe requests from this address; try again later\n";
  finish(res);
}

void finish(response& res) { res.prepare_payload(); }

source_limiter::source_limiter(unsigned per_second, std::size_t max_sources)
    : per_second_(std::max(1u, per_second)), burst_(2.0 * std::max(1u, per_second)), max_sources_(max_sources) {}

std::size_t source_limiter::key_hash::operator()(const key& k) const noexcept {
  std::uint64_t a, b;
  std::memcpy(&a, k.data(), 8);
  std::memcpy(&b, k.data() + 8, 8);
  return std::hash<std::uint64_t>{}(a * 0x9E3779B97F4A7C15ull ^ b);
}

source_limiter::key source_limiter::key_of(const boost::asio::ip::address& a) {
  key k{};
  if (a.is_v4() || (a.is_v6() && a.to_v6().is_v4_mapped())) {
    auto v4 = a.is_v4() ? a.to_v4() : boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
    auto b = v4.to_bytes();
    std::copy(b.begin(), b.end(), k.begin());
    k[15] = 4;  // apart from any IPv6 /64
  } else {
    auto b = a.to_v6().to_bytes();
    std::copy(b.begin(), b.begin() + 8, k.begin());
    k[15] = 6;
  }
  return k;
}

void source_limiter::forget_idle(clock::time_point now) {
  // A bucket that would be full again is the same as no bucket.
  const auto refill = std::chrono::duration<double>(burst_ / per_second_);
  std::erase_if(buckets_, [&](const auto& kv) { return now - kv.second.at >= refill; });
  while (buckets_.size() >= max_sources_) {
    auto quietest = std::min_element(buckets_.begin(), buckets_.end(),
                                     [](const auto& x, const auto& y) { return x.second.at < y.second.at; });
    buckets_.erase(quietest);
  }
}

bool source_limiter::allow(const boost::asio::ip::address& source, clock::time_point now) {
  auto k = key_of(source);
  auto it = buckets_.find(k);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_sources_) forget_idle(now);
    it = buckets_.emplace(k, bucket{burst_, now}).first;
  }
  auto& b = it->second;
  const double elapsed = std::chrono::duration<double>(now - b.at).count();
  if (elapsed > 0) b.tokens = std::min(burst_, b.tokens + elapsed * per_second_);
  b.at = std::max(b.at, now);
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

}  // namespace budstikke::admin
