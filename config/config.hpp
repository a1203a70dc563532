// The engine's configuration as typed values: what every module reads, with no YAML in sight
// (config/load.hpp reads the file). The member initialisers are the defaults; config/keys.cpp
// declares each key's bounds and meaning, and docs/config.md's tables are written from both.
// Secrets never live in the YAML: they come from environment variables or files.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <stdexcept>
#include <string>
#include <vector>

#include "adapters/sms_http/config.hpp"
#include "adapters/smtp/config.hpp"
#include "queue/redis.hpp"
#include "queue/schema.hpp"
#include "templates/unsubscribe.hpp"

namespace budstikke {

// Tokens per second: every rate's bounds (0.001 is one message every 1000 seconds).
inline constexpr double min_rate = 0.001;
inline constexpr double max_rate = 1e6;

// Rate limits (engine/limits.hpp applies them).
struct limits_config {
  std::optional<double> global;  // messages per second, every channel together
  std::optional<double> email;   // the SMTP adapter (all relays together)
  std::optional<double> sms;     // the SMS gateway
  // Recipient domain (ASCII, IDN in xn-- form, lower case) -> rate. A domain also covers its
  // subdomains; the longest configured match wins.
  std::map<std::string, double, std::less<>> domains;
  std::map<std::string, double, std::less<>> tenants;  // campaign tenant -> rate
  // How far ahead of the steady pace a bucket lets tokens go (its GCRA tolerance): a bucket of
  // rate r lets through at most r * burst extra at once, so any 1-second window sees at most
  // r + r * burst messages.
  std::chrono::milliseconds burst{20};

  bool any() const { return global || email || sms || !domains.empty() || !tenants.empty(); }
};

// Quiet hours: per channel and category, a daily window of local wall-clock time in a time zone
// (e.g. no SMS 21:00-08:00 Europe/Oslo) in which nothing is sent (engine/quiet_hours.hpp).
struct quiet_rule {
  queue::channel channel = queue::channel::sms;
  std::vector<std::string> categories;  // empty: every category
  int from = 0;                         // seconds after local midnight, inclusive
  int to = 0;                           // exclusive; to < from: the window crosses midnight
  std::string timezone = "UTC";         // an IANA zone id, e.g. Europe/Oslo

  bool applies(queue::channel ch, std::string_view category) const;
};

struct engine_config {
  std::size_t workers = 0;          // shards; 0 = one per core
  std::size_t window = 2000;        // in-flight messages per shard (read, not yet recorded)
  std::size_t read_batch = 256;     // XREADGROUP COUNT
  std::size_t record_batch = 512;   // outcomes per recording pipeline
  std::chrono::milliseconds record_interval{5};   // longest an outcome waits to be recorded
  std::chrono::milliseconds registry_interval{500};  // how often the campaign registry is re-read
  std::chrono::milliseconds idle_poll{200};       // XREADGROUP BLOCK when nothing is waiting
  std::string consumer;             // consumer name prefix; default: the host name
  // Transient answers (4xx to one message, a 5xx from the SMS gateway for one request): retried
  // after 1, 4, 16, then every 60 minutes (plus up to a quarter), until max_retry_age after the
  // first one; categories may override each (category_policy). engine/retry.hpp has the rule.
  std::size_t max_attempts = 0;     // counted sends before a transient failure is final; 0 = no limit
  std::chrono::milliseconds retry_backoff{60000};       // the wait after the first transient answer
  std::chrono::milliseconds retry_backoff_max{3600000};  // the longest wait
  std::chrono::milliseconds max_retry_age{86400000};     // then a still deferred message is failed
  std::chrono::milliseconds retry_poll{250};      // how often due retries are moved back into their stream
  std::size_t events_max_len = 1000000;           // the events stream's cap (approximate); 0 = no events
  std::chrono::milliseconds shutdown_grace{10000};  // SIGTERM: how long in-flight work may finish
  // Messages marked "on the wire" at once per shard; 0 = 4 x (smtp.connections +
  // sms.gateway.concurrency). After a crash, what may be ambiguous is these plus the outcomes not
  // yet recorded — never the read-ahead.
  std::size_t send_window = 0;
  std::chrono::milliseconds heartbeat_interval{2000};  // liveness key refresh
  std::chrono::milliseconds consumer_timeout{30000};   // a consumer silent this long is dead: its entries are reclaimed
  std::size_t max_deliveries = 5;   // an entry read this often without an outcome is poison: failed
  // The admin HTTP port (/metrics, /healthz, /readyz, POST /unsubscribe): host:port; empty
  // disables it (and the two below).
  std::string admin_listen = "127.0.0.1:9464";
  std::string probe_listen;        // /healthz and /readyz only, on a listener of their own
  std::string unsubscribe_listen;  // POST /unsubscribe only; admin_listen then no longer serves it
  std::size_t admin_max_connections = 512;            // per listener
  std::chrono::milliseconds admin_head_timeout{2000};  // a request head must arrive within this
  std::size_t unsubscribe_rate_per_source = 10;        // POST /unsubscribe a second from one address
  // `run --until-idle --max-wait`: stop waiting for a suspended relay or gateway after this long
  // (exit 3, the work left pending); 0 = wait until it is back. Not a file key.
  std::chrono::milliseconds max_path_wait{0};
  // Shares of reading between tenants sending at the same time (default 1 each).
  std::map<std::string, int, std::less<>> tenant_weights;
};

// What to do with a message that was on the wire when an engine died (RFC 1047): send it again
// (a member may get it twice) or record it `ambiguous` (a member may not get it at all).
struct category_policy {
  bool resend_ambiguous_email = false;
  bool resend_ambiguous_sms = false;
  // Without a recorded grant the message is skipped. Where not required, only an explicit
  // withdrawal (or a suppression) stops a message.
  bool consent_required = false;
  // false: the consent store is not read at all (for messages a member cannot refuse, such as a
  // password reset); the suppression list still is. Cannot go with consent_required.
  bool check_consent = true;
  // The retry policy's keys for this category; 0: the engine's (engine.max_attempts, ...).
  std::size_t max_attempts = 0;
  std::chrono::milliseconds retry_backoff{0}, retry_backoff_max{0}, max_retry_age{0};
};

struct email_config {
  std::string message_id_domain;    // right side of Message-ID; default: the sender's domain
  // List-Unsubscribe (RFC 2369) with one-click (RFC 8058) for these categories, when a URL is set.
  std::string unsubscribe_url;      // https://..., "{token}" is replaced by the signed token
  std::string unsubscribe_mailto;   // optional mailto:...; "{token}" is replaced too
  std::vector<std::string> unsubscribe_categories{"newsletter", "winback"};
  // Signs the tokens (and verifies them), under its key id. Only from the environment or files:
  // BUDSTIKKE_UNSUBSCRIBE_SECRET(_FILE) or email.unsubscribe_secret_file (key id "0"), or the first
  // line of email.unsubscribe_secrets_file or BUDSTIKKE_UNSUBSCRIBE_SECRETS_FILE.
  std::string unsubscribe_secret;
  std::string unsubscribe_key_id = "0";
  // Verify only: the other lines of that list, e.g. a replaced secret, kept until the links it
  // signed may go. Every secret has at least 16 bytes, every id is unique.
  std::vector<templates::unsubscribe_key> unsubscribe_accepted_keys;
  bool has_unsubscribe_secret() const { return !unsubscribe_secret.empty(); }
  // Every key that verifies tokens, the signing one first.
  std::vector<templates::unsubscribe_key> unsubscribe_keys() const;
  bool unsubscribe_enabled(std::string_view category) const;
};

struct sms_config {
  bool normalise = true;            // typographic characters that force UCS-2 become GSM ones
  std::size_t max_segments = 6;     // a longer message is skipped; the campaign may override it
  std::string default_region = "NO";  // numbers without a country code are read as this region's
  // SMS campaigns are served only when a gateway is configured (sms.gateway).
  std::optional<adapters::sms_http::gateway_config> gateway;
};

// The relay of a local trial: `budstikke sink smtp` listens on port 2525.
inline adapters::smtp::smtp_config local_trial_smtp() {
  adapters::smtp::smtp_config s;
  s.port = 2525;
  return s;
}

struct config {
  queue::redis_config redis;
  std::string key_prefix = "budstikke:";
  engine_config engine;
  adapters::smtp::smtp_config smtp = local_trial_smtp();  // one relay (top-level keys) or `relays`
  email_config email;
  sms_config sms;
  // Per message category; categories not listed use `default_category`. Tariff results and
  // transactional mail matter more than a rare duplicate; newsletters and SMS (which cost money
  // and annoy twice) are not resent. Newsletters and win-back messages need a recorded grant;
  // membership information does not.
  std::map<std::string, category_policy, std::less<>> categories{
      {"newsletter", {.consent_required = true}},
      {"tariff", {.resend_ambiguous_email = true}},
      {"transactional", {.resend_ambiguous_email = true}},
      {"winback", {.consent_required = true}},
  };
  category_policy default_category;
  limits_config limits;                 // rate limits (none by default)
  std::vector<quiet_rule> quiet_hours;  // none by default
  const category_policy& policy(std::string_view category) const {
    auto it = categories.find(category);
    return it == categories.end() ? default_category : it->second;
  }
};

// A configuration error names the file, line and key.
class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace budstikke
