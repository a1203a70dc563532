// How the engine reaches an SMS gateway over HTTP: Kannel's smsbox `sendsms` interface, or a
// generic JSON REST gateway. docs/config.md's `sms.gateway` section is the reference for every field.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/path.hpp"
#include "support/backoff.hpp"

namespace budstikke::adapters::sms_http {

enum class gateway_kind : std::uint8_t {
  kannel,  // smsbox sendsms: username, password, from, to, text, coding, charset as form fields
  json,    // a JSON body with configurable field names, bearer or basic auth
};

enum class http_method : std::uint8_t { get, post, put };

// A Retry-After pauses the whole gateway, not one shard's view of it: every shard's messenger
// for the same gateway shares one of these (the engine's config holds it).
class gateway_backoff {
 public:
  using clock = std::chrono::steady_clock;

  // Only ever moves the end of the pause later.
  void pause_until(clock::time_point t) noexcept {
    auto want = t.time_since_epoch().count();
    auto cur = until_.load(std::memory_order_relaxed);
    while (cur < want && !until_.compare_exchange_weak(cur, want, std::memory_order_relaxed)) {
    }
  }
  clock::time_point paused_until() const noexcept {
    return clock::time_point(clock::duration(until_.load(std::memory_order_relaxed)));
  }

 private:
  std::atomic<clock::rep> until_{clock::time_point::min().time_since_epoch().count()};
};

struct gateway_config {
  gateway_kind kind = gateway_kind::kannel;
  // kannel: the smsbox sendsms URL (http://host:13013/cgi-bin/sendsms); json: the endpoint.
  std::string url;
  // kannel: post (the text as the body, the rest in X-Kannel-* headers) or get (every field, the
  // password too, in the URL); json: post or put.
  http_method method = http_method::post;

  // kannel: the sendsms user's name and password; json: HTTP basic auth when username is set.
  std::string username;
  std::string password;      // from the environment or a file, never from the YAML
  std::string bearer_token;  // json: "Authorization: Bearer ..."; from the environment or a file
  std::vector<std::pair<std::string, std::string>> headers;  // json: extra request headers

  // json: field names in the request body; an empty name leaves the field out.
  std::string to_field = "to", from_field = "from", text_field = "text", encoding_field = "encoding";
  // json: where the provider's message id is in the response: object keys and array indexes
  // separated by dots ("messages.0.id"); empty: the response carries none.
  std::string id_path;

  // kannel: delivery reports, passed through when set.
  std::string dlr_mask;
  std::string dlr_url;

  std::string default_from;  // the sender id when the campaign has none

  std::size_t concurrency = 16;  // requests in flight per engine shard (one connection each)
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};  // the whole request, connect included
  std::chrono::milliseconds max_retry_after{3600000};  // a longer Retry-After is cut to this
  std::chrono::milliseconds idle_timeout{60000};       // keep-alive connections unused this long close

  // The proxy to reach the gateway through; empty: none, whatever http_proxy and the like say
  // (the requests carry the credentials, and a proxy from the environment is nobody's choice).
  std::string proxy;

  bool tls_verify = true;
  std::string ca_file;  // PEM bundle; empty: the system's store

  std::shared_ptr<gateway_backoff> backoff = std::make_shared<gateway_backoff>();

  // A gateway that cannot be reached (no connection, 502, 504, a 503 without Retry-After) is
  // suspended for every shard (the health is shared like the pause) and probed: one request at
  // a time, spaced by a capped exponential backoff with equal jitter between these bounds.
  std::chrono::milliseconds probe_backoff_min{500}, probe_backoff_max{10000};
  std::shared_ptr<path_health> health = std::make_shared<path_health>();
  support::backoff probes() const {
    const auto first = std::max(std::chrono::milliseconds(1), probe_backoff_min);
    return {.initial = first, .cap = std::max(first, probe_backoff_max), .spread = support::jitter::equal, .floor = first};
  }

  // The gateway was suspended or is usable again (one call per change, by the shard that saw it).
  // `detail` never carries a number or a credential. Empty: not said.
  std::function<void(std::string_view event, std::string_view gateway, std::string_view detail)> log;
};

}  // namespace budstikke::adapters::sms_http
