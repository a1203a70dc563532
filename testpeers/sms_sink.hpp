// The project's own SMS gateway sink: an HTTP server (Beast) that speaks Kannel's sendsms
// interface or the generic JSON one, accepts, counts and optionally stores every message, with
// injectable faults (429 with Retry-After, 5xx, slow answers, dropped connections).
//
// Storage (`store`): one JSON line per accepted message,
// {"id":"sink-N","to":"+47...","from":"...","text":"...","coding":"gsm7"|"ucs2"}.
//
// Back-off windows: after answering 429 with Retry-After: S at time t, a request arriving in
// [t + backoff_grace, t + S) is counted (`in_backoff`) and answered 429 again. The grace covers
// requests already on their way when the 429 left; with many connections and a busy machine a
// request sent before the client read the 429 can arrive later than that, so the count is an
// upper bound. `in_backoff_same_connection` is exact: a request inside the window on the very
// connection that carried the 429 was sent after the client had read it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

namespace budstikke::testpeers {

enum class sms_sink_kind : std::uint8_t { kannel, json };

struct sms_sink_options {
  std::string listen_host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port (see sms_sink::port())
  sms_sink_kind kind = sms_sink_kind::kannel;
  std::optional<std::string> store;  // JSON Lines file of accepted messages
  // kannel: the sendsms username/password every request must carry; json: HTTP basic auth.
  std::string username, password;
  std::string bearer_token;  // json: "Authorization: Bearer <token>" required when set

  double throttle_share = 0;            // answered 429 with Retry-After
  std::chrono::seconds retry_after{1};  // the Retry-After of those answers
  std::chrono::milliseconds backoff_grace{50};
  double error_share = 0;               // answered 500
  double slow_share = 0;                // answered after slow_delay (not stored: the client may be gone)
  std::chrono::milliseconds slow_delay{0};
  double drop_share = 0;                // the connection is closed after the request, unanswered
  std::uint64_t seed = 1;
  std::chrono::milliseconds idle_timeout{60000};
};

// Kannel's form fields or a JSON body, as the sink read them.
struct sms_request_fields {
  std::string username, password, from, to, text, coding;
};
// Parses application/x-www-form-urlencoded text ('+' is a space, %XX a byte) into the Kannel
// fields it names; false when a %-escape is malformed.
bool parse_kannel_form(std::string_view form, sms_request_fields& out);

class sms_sink {
 public:
  // Binds and starts accepting at once. Throws std::system_error when it cannot listen or cannot
  // open the store.
  sms_sink(boost::asio::any_io_executor ex, sms_sink_options opt);
  ~sms_sink();  // stop()
  sms_sink(const sms_sink&) = delete;
  sms_sink& operator=(const sms_sink&) = delete;

  std::uint16_t port() const;
  void stop();

  struct stats {
    std::uint64_t connections = 0, requests = 0;
    std::uint64_t accepted = 0;    // 2xx, stored
    std::uint64_t rejected = 0;    // 4xx: malformed, missing fields, bad credentials
    std::uint64_t throttled = 0;   // 429 drawn from throttle_share
    std::uint64_t in_backoff = 0;  // requests inside a back-off window (answered 429 again)
    std::uint64_t errors = 0;      // 500
    std::uint64_t slow = 0;        // answered late, not stored
    std::uint64_t dropped = 0;     // closed without an answer
    std::uint64_t ucs2 = 0;        // accepted messages in UCS-2
    std::uint64_t in_backoff_same_connection = 0;  // certain violations (see above)
  };
  // A snapshot; safe to call from another thread while the sink runs.
  stats statistics() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

// Blocking: runs a sink on its own io_context until SIGINT/SIGTERM, prints
// "listening on 127.0.0.1:PORT" on start (flushed) and one line of counts on exit. Returns the
// process exit code (0, or 1 when it cannot start). Used by `budstikke sink sms`.
int run_sms_sink_until_signal(const sms_sink_options& opt);

}  // namespace budstikke::testpeers
