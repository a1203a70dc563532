// The HTTP side of an SMS gateway, sans-io: the request for one message (Kannel's form fields or a
// JSON body) and what the gateway's answer means for the message. The curl layer only moves bytes.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/delivery.hpp"
#include "adapters/sms_http/config.hpp"

namespace budstikke::adapters::sms_http {

// One SMS as the gateway gets it.
struct sms_fields {
  std::string_view to;    // E.164, "+4741234567"
  std::string_view from;  // sender id (alphanumeric or a number)
  std::string_view text;  // UTF-8
  bool ucs2 = false;      // else GSM 03.38 7-bit
};

struct http_request {
  http_method method = http_method::get;
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  void clear() {
    url.clear();
    headers.clear();
    body.clear();
  }
};

// "sms gateway http://host:port/path": the URL without credentials or query, for logs and status.
std::string gateway_name(const gateway_config& cfg);
// The URL a probe GETs: the configured one without its query (no credentials, no message).
std::string probe_url(const gateway_config& cfg);
// True when the gateway's credentials (password, bearer token, or user info in the URL) would go
// over plain http:// to a host that is not loopback: anyone on the path can read them.
bool credentials_in_clear(const gateway_config& cfg);

// Percent-encodes everything but RFC 3986's unreserved characters, appending to `out`.
void append_form_encoded(std::string& out, std::string_view s);

// Builds the request for one message into `out` (cleared first, buffers reused).
// kannel GET: username, password, from, to, text, coding (0 GSM, 2 UCS-2), charset=UTF-8 and
// the optional dlr-mask/dlr-url in the query. kannel POST (smsbox's POST interface): the text as
// a text/plain UTF-8 body, the rest in X-Kannel-Username/-Password/-From/-To/-Coding/-DLR-Mask/-DLR-Url.
// json: {"<to_field>":..., "<from_field>":..., "<text_field>":..., "<encoding_field>":"gsm7"|"ucs2"}
// with Content-Type, Accept, Authorization and the configured headers.
void build_request(const gateway_config& cfg, const sms_fields& sms, http_request& out);

// Delta-seconds or an HTTP-date (IMF-fixdate, RFC 850 or asctime, RFC 9110 10.2.3), relative to
// `now`; a date in the past is zero. nullopt when it is neither.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

// The value at `path` ("messages.0.id") in a JSON document, as text (a number is printed);
// nullopt when the body is not JSON or nothing (or an object/array) is there. No exceptions.
std::optional<std::string> find_json_value(std::string_view body, std::string_view path);

struct http_answer {
  long status = 0;
  std::string_view retry_after;  // the header's value, empty when absent
  std::string_view body;
};

struct verdict {
  outcome result = outcome::transient;
  std::string reply;        // "<status> <first line of the body>", for records; never the number
  std::string provider_id;  // the gateway's message id, when it gives one
  std::chrono::milliseconds retry_after{0};  // the gateway asked for a pause (429/503)
};

// 2xx accepted (with the provider's id), 429 and 503 transient (Retry-After honoured, capped at
// cfg.max_retry_after), other 5xx transient, 4xx and anything else permanent. For Kannel a 2xx
// must say "0: Accepted for delivery" or "3: Queued for later delivery" (else ambiguous).
// A failure of the gateway itself is unsent (not an attempt; the path is suspended): 502 and 504
// (a proxy in front of it cannot reach it) and a 503 without Retry-After.
void classify(const gateway_config& cfg, const http_answer& answer, std::chrono::system_clock::time_point now,
              verdict& out);

// 502 or 504: the gateway behind a proxy cannot be reached.
bool is_gateway_unavailable(long status) noexcept;

// Why no HTTP answer came back. Nothing sent (connect, send, timeout_unsent) is unsent: the
// path failed, not the message.
enum class transport_failure : std::uint8_t {
  connect,             // resolving, connecting or TLS failed: nothing was sent
  send,                // the request could not be written in full: the gateway cannot act on it
  timeout_unsent,      // the time ran out before the request was sent
  timeout_after_send,  // the request went out, no answer in time: the gateway may have sent it
  lost_after_send,     // the connection ended after the request went out, no answer
};

void classify(transport_failure f, std::string_view detail, verdict& out);

}  // namespace budstikke::adapters::sms_http
