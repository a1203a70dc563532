// The configuration's keys, section by section, in the order of docs/config.md. A key's default
// is its member's initialiser in config/config.hpp; what is here is its name, its member, its
// bounds and its meaning (the meaning is the reference's cell, so it may run long).
#include "config/keys.hpp"

#include <cmath>
#include <map>

#include <fmt/format.h>

#include "config/load.hpp"

namespace budstikke {
namespace {

using adapters::sms_http::gateway_config;
using adapters::smtp::relay_config;
using std::chrono::milliseconds;

template <typename Root, typename T>
constexpr config_key<Root> whole(std::string_view name, T Root::*member, double min, double max,
                                 std::string_view meaning, std::string_view note = {}) {
  return {.name = name, .member = member, .range = key_range{min, max}, .bounds = note, .meaning = meaning};
}

template <typename Root>
constexpr config_key<Root> millis(std::string_view name, milliseconds Root::*member, double min, double max,
                                  std::string_view meaning, std::string_view note = {}) {
  return {.name = name, .member = member, .range = key_range{min, max}, .bounds = note, .meaning = meaning};
}

template <typename Root>
constexpr config_key<Root> text(std::string_view name, std::string Root::*member, std::string_view bounds,
                                std::string_view meaning, std::string_view unset = {}) {
  return {.name = name, .member = member, .bounds = bounds, .meaning = meaning, .unset = unset};
}

template <typename Root>
constexpr config_key<Root> flag(std::string_view name, bool Root::*member, std::string_view meaning) {
  return {.name = name, .member = member, .meaning = meaning};
}

template <typename Root>
constexpr config_key<Root> rate(std::string_view name, std::optional<double> Root::*member, std::string_view meaning) {
  return {.name = name, .member = member, .range = key_range{min_rate, max_rate}, .meaning = meaning, .unset = "none"};
}

std::string quoted(std::string_view s) { return fmt::format("`{}`", s); }

// `{a: 1, b: 2}`, or what an empty mapping means.
template <typename Map>
std::string shown_map(const Map& m, std::string_view empty) {
  if (m.empty()) return std::string(empty);
  std::string s;
  for (const auto& [k, v] : m) s += fmt::format("{}{}: {}", s.empty() ? "" : ", ", k, v);
  return quoted("{" + s + "}");
}

std::string shown_list(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
  return quoted("[" + s + "]");
}

// Choice keys list their names in the order of the enum's values.
constexpr std::string_view tls_names[]{"none", "starttls", "implicit"};
constexpr std::string_view gateway_kind_names[]{"kannel", "json"};
constexpr std::string_view http_method_names[]{"get", "post", "put"};

constexpr config_key<config> redis_[]{
    {.name = "url",
     .bounds = "`redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS",
     .meaning = "the Redis holding the campaigns. With `user:password` the engine authenticates as that ACL user "
                "(`AUTH user password`; see [operations](operations.md#redis) for the commands it needs), with "
                "`:password` or a password alone as the default user. `rediss://` verifies the server's "
                "certificate, always",
     .shown = [](const config& c) { return quoted("redis://" + queue::describe(c.redis)); }},
    {.name = "password_file", .bounds = "readable file", .meaning = "the password, from a file (e.g. a mounted secret)"},
    text("key_prefix", &config::key_prefix, "any string", "prefix of every key (see [the schema](redis-schema.md))"),
};

constexpr config_key<queue::redis_config> redis_connection_[]{
    millis("connect_timeout_ms", &queue::redis_config::connect_timeout, 100, 600000,
           "connecting to Redis (and the TLS handshake)"),
    millis("command_timeout_ms", &queue::redis_config::command_timeout, 100, 600000,
           "waiting for one pipeline's replies"),
    text("tls_ca_file", &queue::redis_config::tls_ca_file, "readable PEM file",
         "`rediss://`: the CAs to trust instead of the system's store (`/etc/ssl/certs`)", "system store"),
    text("tls_cert_file", &queue::redis_config::tls_cert_file, "readable PEM file",
         "`rediss://`: a client certificate (chain) to present, for a Redis with `tls-auth-clients yes`", "none"),
    text("tls_key_file", &queue::redis_config::tls_key_file, "readable PEM file",
         "the private key of `tls_cert_file`", "`tls_cert_file`"),
    text("tls_server_name", &queue::redis_config::tls_server_name, "DNS name or IP address",
         "`rediss://`: the name sent as SNI and required in the server's certificate", "the URL's host"),
};

constexpr config_key<engine_config> engine_[]{
    whole("workers", &engine_config::workers, 0, 256,
          "shards (threads, each with its own connections); 0 = one per core"),
    whole("window", &engine_config::window, 1, 1000000,
          "messages in flight per shard, from the read until the outcome is recorded. Bounds memory: about 10 KB "
          "per slot with a typical newsletter"),
    whole("read_batch", &engine_config::read_batch, 1, 10000, "recipients per `XREADGROUP`"),
    whole("record_batch", &engine_config::record_batch, 1, 10000, "outcomes recorded per round trip"),
    millis("record_interval_ms", &engine_config::record_interval, 1, 10000,
           "longest an outcome waits before it is recorded"),
    millis("registry_interval_ms", &engine_config::registry_interval, 50, 600000,
           "how often the campaign registry and campaign states are re-read: `pause`, `resume` and `cancel` take "
           "effect within this"),
    millis("idle_poll_ms", &engine_config::idle_poll, 10, 60000,
           "how long a read blocks in Redis when no campaign has waiting recipients"),
    text("consumer", &engine_config::consumer, "string",
         "consumer-name prefix in the consumer groups (`<consumer>-<shard>`); must be unique per process and stable "
         "across its restarts, because a restarted process re-reads its own unacknowledged entries",
         "host name"),
    whole("max_attempts", &engine_config::max_attempts, 0, 1000,
          "sends of one message before a temporary failure (4xx to its RCPT or DATA, a 5xx from the SMS gateway for "
          "its request) becomes `failed` (and a dead letter, see `budstikke dlq`); 0: no limit, `max_retry_age_ms` "
          "ends the retries. An SMS gateway's answer that only asks for a pause (429/503 with `Retry-After`, or the "
          "gateway still pausing) is not an attempt, up to 100 of them per message; its retry waits the pause plus "
          "up to a tenth of it. A failure of the path (see [outages](operations.md#outages)) is never an attempt"),
    millis("retry_backoff_ms", &engine_config::retry_backoff, 1, 86400000,
           "the wait after the first temporary failure; each further wait is 4 times the one before, up to "
           "`retry_backoff_max_ms`, plus up to a quarter at random (never less: a greylisting relay wants the "
           "wait). The defaults give 1, 4, 16, then every 60 minutes. Waiting retries live in Redis "
           "(`campaign:{ID}:retry`), so they survive a restart and hold no slot"),
    millis("retry_backoff_max_ms", &engine_config::retry_backoff_max, 1, 86400000, "the longest wait between two attempts"),
    millis("max_retry_age_ms", &engine_config::max_retry_age, 1000, 2592000000.0,
           "a message still only deferred this long after its first temporary failure is `failed` with its last "
           "reply (once its next attempt would come later than that); the counterpart of Postfix's "
           "`maximal_queue_lifetime`"),
    millis("retry_poll_ms", &engine_config::retry_poll, 10, 60000,
           "how often each shard moves the due retries of the campaigns it serves back into their streams (at most "
           "500 per campaign per pass); a retry goes out up to this much after it is due"),
    whole("events_max_len", &engine_config::events_max_len, 0, 1000000000,
          "the events stream `<prefix>events` (one event per recorded outcome, for portals) is capped near this many "
          "entries (`XADD MAXLEN ~`); 0 writes no events"),
    millis("shutdown_grace_ms", &engine_config::shutdown_grace, 0, 600000,
           "on SIGTERM/SIGINT, how long in-flight messages may take to finish and be recorded"),
    whole("send_window", &engine_config::send_window, 0, 100000,
          "messages per shard marked \"on the wire\" and not yet answered; 0 = 4 × (`smtp.connections` + "
          "`sms.gateway.concurrency`). After a crash only these, and outcomes not yet recorded, can be ambiguous"),
    millis("heartbeat_interval_ms", &engine_config::heartbeat_interval, 100, 600000,
           "how often a shard refreshes its liveness key"),
    millis("consumer_timeout_ms", &engine_config::consumer_timeout, 1000, 3600000,
           "a consumer whose liveness key is older is dead; other engines take over its pending entries",
           "≥ 2 × `heartbeat_interval_ms`"),
    whole("max_deliveries", &engine_config::max_deliveries, 1, 1000,
          "an entry read this many times without an outcome (it crashed the engine each time) is poison: `failed`"),
    {.name = "tenant_weights",
     .range = key_range{1, 100},
     .bounds = "a mapping `{TENANT: weight}`",
     .meaning = "shares of reading between tenants sending at the same time: with `{oslo: 3}` the tenant `oslo` gets "
                "3 reads for every 1 of each other tenant, however many campaigns each runs; within a tenant, "
                "campaigns share by priority (priority + 1). Priority 9 campaigns (the urgent lane) go first "
                "regardless",
     .shown = [](const engine_config& e) { return shown_map(e.tenant_weights, "`{}` (1 each)"); }},
    text("admin_listen", &engine_config::admin_listen,
         "`HOST:PORT` (IPv6 as `[::1]:9464`; port 0 = any free port), or empty",
         "the admin HTTP port: `/metrics` (Prometheus), `/healthz`, `/readyz` (see [operations](operations.md)); "
         "empty disables it (and the two listeners below). It has no authentication: keep it on loopback or a "
         "private network"),
    text("probe_listen", &engine_config::probe_listen, "`HOST:PORT`, or empty",
         "a listener for `/healthz` and `/readyz` alone, for the orchestrator's probes: nothing else can take its "
         "connections (they are still served on `admin_listen` too)", "none"),
    text("unsubscribe_listen", &engine_config::unsubscribe_listen, "`HOST:PORT`, or empty",
         "a listener for `POST /unsubscribe` alone, to face the public (or the portal's reverse proxy) without "
         "exposing `/metrics`; `admin_listen` then no longer serves it",
         "none: `admin_listen` serves it"),
    whole("admin_max_connections", &engine_config::admin_max_connections, 1, 100000,
          "connections each admin listener serves at once; the next 8 only for probes, beyond those a quick `503`"),
    millis("admin_head_timeout_ms", &engine_config::admin_head_timeout, 100, 60000,
           "a request's head (its line and headers) must arrive within this, or the connection is closed; an "
           "idle keep-alive connection is closed after it too"),
    whole("unsubscribe_rate_per_source", &engine_config::unsubscribe_rate_per_source, 1, 100000,
          "`POST /unsubscribe` requests a second from one address (IPv6: one /64), in bursts of twice that; "
          "beyond, `429`"),
};

constexpr config_key<category_policy> categories_[]{
    flag("consent_required", &category_policy::consent_required,
         "send only with a recorded grant (see [consent](redis-schema.md#consent-and-suppression)); where `false`, "
         "only a withdrawal or a suppression stops a message"),
    {.name = "resend_ambiguous",
     .bounds = "a list of channels: `email`, `sms`",
     .meaning = "channels on which such messages are sent again",
     .shown =
         [](const category_policy& p) {
           std::vector<std::string> channels;
           if (p.resend_ambiguous_email) channels.emplace_back("email");
           if (p.resend_ambiguous_sms) channels.emplace_back("sms");
           return shown_list(channels);
         }},
    whole("max_attempts", &category_policy::max_attempts, 0, 1000, "`engine.max_attempts` for this category", "0: the engine's"),
    millis("retry_backoff_ms", &category_policy::retry_backoff, 0, 86400000, "`engine.retry_backoff_ms` for this category",
           "0: the engine's"),
    millis("retry_backoff_max_ms", &category_policy::retry_backoff_max, 0, 86400000,
           "`engine.retry_backoff_max_ms` for this category", "0: the engine's"),
    millis("max_retry_age_ms", &category_policy::max_retry_age, 0, 2592000000.0,
           "`engine.max_retry_age_ms` for this category: a tariff result may give up sooner than a newsletter",
           "0: the engine's"),
    flag("check_consent", &category_policy::check_consent,
         "`false`: the consent store is not read for this category at all, for messages a member cannot refuse (a "
         "receipt, a password reset); the suppression list is still checked. Refused together with "
         "`consent_required: true`"),
};

constexpr config_key<limits_config> limits_[]{
    rate("global", &limits_config::global, "messages per second over every campaign and channel"),
    rate("email", &limits_config::email, "e-mail messages per second, through every relay together"),
    rate("sms", &limits_config::sms, "SMS per second to the gateway (one request per message)"),
    {.name = "domains",
     .range = key_range{min_rate, max_rate},
     .bounds = "a mapping `{DOMAIN: rate}`",
     .meaning = "e-mail to a recipient domain: `gmail.com` covers `gmail.com` and `*.gmail.com` (whole labels; "
                "`notgmail.com` is not covered), without regard to case; the longest listed match wins. Names are "
                "converted to the ASCII form the envelope carries (IDNA2008/UTS #46); a name listed twice is an error",
     .shown = [](const limits_config& l) { return shown_map(l.domains, "none"); }},
    {.name = "tenants",
     .range = key_range{min_rate, max_rate},
     .bounds = "a mapping `{TENANT: rate}`",
     .meaning = "messages per second of the campaigns of one tenant (the campaign's `tenant` field)",
     .shown = [](const limits_config& l) { return shown_map(l.tenants, "none"); }},
    millis("burst_ms", &limits_config::burst, 0, 1000,
           "how far ahead of the steady pace a bucket lets messages go (the GCRA tolerance): a bucket of rate r lets "
           "r × burst_ms / 1000 messages (rounded down) through at once on top of the pace, so any second sees at "
           "most r × (1 + burst_ms / 1000), e.g. 102 at 100/s. 0: strictly one every 1/r seconds"),
};

// Every key of a rule is read by config/load.cpp: the times and the zone are checked as a whole.
constexpr config_key<quiet_rule> quiet_rule_[]{
    {.name = "channel", .bounds = "`email`, `sms`", .meaning = "the channel the window holds back", .unset = "— (required)"},
    {.name = "categories",
     .bounds = "a non-empty list",
     .meaning = "only campaigns of these categories",
     .unset = "all"},
    {.name = "from",
     .bounds = "`\"HH:MM\"` or `\"HH:MM:SS\"`, 00:00–23:59:59",
     .meaning = "start, inclusive, in local wall-clock time",
     .unset = "— (required)"},
    {.name = "to",
     .bounds = "as `from`, not equal to it",
     .meaning = "end, exclusive; earlier than `from` means the window crosses midnight",
     .unset = "— (required)"},
    {.name = "timezone",
     .bounds = "an IANA time zone id (`Europe/Oslo`, `UTC`)",
     .meaning = "the zone of `from` and `to`, with its daylight-saving rules (ICU's time zone data)",
     .unset = "— (required)"},
};

constexpr config_key<relay_config> relay_[]{
    text("host", &relay_config::host, "host name or address", "the relay"),
    whole("port", &relay_config::port, 1, 65535, "the relay's port"),
    text("helo_name", &relay_config::helo_name, "string",
         "the name given in `EHLO`; use this host's FQDN with a real relay"),
    whole("connections", &relay_config::connections, 1, 1000,
          "connections per shard (each pipelines one message per round trip)"),
    whole("max_messages_per_connection", &relay_config::max_messages_per_connection, 1, 10000000,
          "then `QUIT` and a new connection"),
    {.name = "tls",
     .meaning = "`starttls`: STARTTLS is required — a relay that does not offer it (or whose offer was stripped) "
                "gets no AUTH and no MAIL; `implicit`: TLS from the first byte (port 465). The default `none` keeps "
                "the local trial against `budstikke sink smtp` working; use `starttls` or `implicit` with any real "
                "relay",
     .shown = [](const relay_config& r) { return quoted(tls_names[static_cast<std::size_t>(r.tls)]); },
     .choices = tls_names},
    flag("tls_verify", &relay_config::tls_verify,
         "verify the relay's certificate chain and name; a relay that fails gets no AUTH and no MAIL. `false` only "
         "for tests"),
    text("ca_file", &relay_config::ca_file, "readable PEM file",
         "the CAs to trust instead of the system's store (`/etc/ssl/certs`)", "system store"),
    text("tls_server_name", &relay_config::tls_server_name, "DNS name or IP address",
         "the name sent as SNI and required in the certificate", "`host`"),
    text("username", &relay_config::username, "string",
         "AUTH PLAIN (preferred) or LOGIN as this user; only over TLS. The password never goes in this file: "
         "`BUDSTIKKE_SMTP_PASSWORD`, `BUDSTIKKE_SMTP_PASSWORD_FILE` or `password_file`"),
    {.name = "password_file",
     .bounds = "readable file",
     .meaning = "the AUTH password, from a file (a trailing line break is not part of it), e.g. a mounted secret"},
    flag("allow_auth_without_tls", &relay_config::allow_auth_without_tls,
         "allow AUTH in clear text, and only when the relay's address is a loopback address"),
};

constexpr config_key<relay_config> smtp_shared_[]{
    millis("connect_timeout_ms", &relay_config::connect_timeout, 100, 600000, "TCP connect"),
    millis("command_timeout_ms", &relay_config::command_timeout, 100, 600000,
           "each command's reply (greeting, EHLO, MAIL, RCPT, DATA)"),
    millis("data_timeout_ms", &relay_config::data_timeout, 100, 3600000, "the reply to the final dot"),
    millis("idle_timeout_ms", &relay_config::idle_timeout, 100, 3600000, "an idle connection is closed after this"),
    millis("reconnect_backoff_min_ms", &relay_config::reconnect_backoff_min, 1, 600000,
           "first wait before reconnecting after a failure; doubles per consecutive failure, jittered"),
    millis("reconnect_backoff_max_ms", &relay_config::reconnect_backoff_max, 1, 3600000,
           "the longest such wait; a suspended relay is probed after it at the latest"),
    {.name = "relays",
     .range = key_range{1, adapters::smtp::smtp_config::max_relays},
     .bounds = "a list of mappings",
     .meaning = "several relays; see below. Without it, the keys above describe the one relay"},
};

constexpr config_key<relay_config> relay_entry_[]{
    whole("weight", &relay_config::weight, 1, 1000,
          "the relay's share of the messages among the usable relays (smooth weighted round-robin)"),
};

constexpr config_key<email_config> email_[]{
    text("message_id_domain", &email_config::message_id_domain, "string",
         "right-hand side of generated `Message-ID`s", "the sender's domain"),
    text("unsubscribe_url", &email_config::unsubscribe_url, "`https://` URL containing `{token}`",
         "`List-Unsubscribe` and `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058) for the categories "
         "below; templates get it as `{{unsubscribe_url}}`",
         "— (no header)"),
    text("unsubscribe_mailto", &email_config::unsubscribe_mailto, "`mailto:` URL",
         "optional `mailto:` URL added to `List-Unsubscribe` (`{token}` is replaced here too)"),
    {.name = "unsubscribe_categories",
     .bounds = "a list of categories",
     .meaning = "campaign categories that get the headers",
     .shown = [](const email_config& e) { return shown_list(e.unsubscribe_categories); }},
    {.name = "unsubscribe_secret_file",
     .bounds = "readable file",
     .meaning = "file holding the signing secret, at least 16 bytes, key id `0` (a trailing line break is not part "
                "of it)"},
    {.name = "unsubscribe_secrets_file",
     .bounds = "readable file of 1 to 16 lines `KEYID SECRET`",
     .meaning = "instead of one secret, the keys: the first signs, every one verifies, so that a secret can be "
                "replaced without breaking the links already sent ([unsubscribe.md](unsubscribe.md#replacing-the-secret)). "
                "Ids are 1 to 8 of `A-Z a-z 0-9 _ -`, unique; secrets at least 16 bytes, without blanks"},
};

constexpr config_key<sms_config> sms_[]{
    flag("normalise", &sms_config::normalise,
         "replace typographic characters that would force UCS-2 (« » “ ” ‘ ’ – — … and non-breaking spaces) with "
         "GSM ones, when that makes the whole text GSM 7-bit"),
    whole("max_segments", &sms_config::max_segments, 1, 255,
          "an SMS longer than this is `skipped` with the reason; a campaign's `sms_max_segments` overrides it"),
    text("default_region", &sms_config::default_region,
         "a region code libphonenumber knows (`NO`, `SE`, `DK`, ...)",
         "numbers without a country code are read as this region's. Every number is checked and written in E.164 "
         "(`+4741234567`) before consent, suppression and the gateway see it; an invalid, fixed-line or service "
         "number is `skipped` with the reason"),
    {.name = "gateway",
     .bounds = "a mapping: see below",
     .meaning = "the HTTP gateway SMS campaigns go through",
     .unset = "— (SMS campaigns not served)"},
};

constexpr config_key<gateway_config> gateway_[]{
    {.name = "kind",
     .meaning = "`kannel`: Kannel smsbox's `sendsms` interface; `json`: a REST API taking a JSON body",
     .shown = [](const gateway_config& g) { return quoted(gateway_kind_names[static_cast<std::size_t>(g.kind)]); },
     .choices = gateway_kind_names},
    text("url", &gateway_config::url, "`http://` or `https://` URL",
         "kannel: `http://HOST:13013/cgi-bin/sendsms`; json: the endpoint", "— (required)"),
    {.name = "method",
     .bounds = "kannel takes `get` or `post`, json `post` or `put`",
     .meaning = "kannel `post` sends the text as a `text/plain; charset=UTF-8` body and the rest in `X-Kannel-*` "
                "headers (smsbox refuses form bodies); kannel `get` puts every field, the password too, in the URL, "
                "where access logs and proxies see it",
     .unset = "`post`",
     .choices = http_method_names},
    text("username", &gateway_config::username, "string", "kannel: the sendsms user; json: HTTP basic auth when set"),
    {.name = "password_file",
     .bounds = "readable file",
     .meaning = "the password (or `BUDSTIKKE_SMS_PASSWORD[_FILE]`); never in the YAML"},
    {.name = "bearer_token_file",
     .bounds = "readable file",
     .meaning = "json: `Authorization: Bearer` token (or `BUDSTIKKE_SMS_TOKEN[_FILE]`); wins over basic auth"},
    {.name = "headers",
     .bounds = "a mapping `{NAME: value}`",
     .meaning = "json: extra request headers (e.g. an API version)"},
    {.name = "fields",
     .bounds = "a mapping: see below",
     .meaning = "json: field names in the body",
     .shown =
         [](const gateway_config& g) {
           return quoted(fmt::format("{{to: {}, from: {}, text: {}, encoding: {}}}", g.to_field, g.from_field,
                                     g.text_field, g.encoding_field));
         }},
    text("id_path", &gateway_config::id_path, "dotted path, array indexes as numbers (`messages.0.id`)",
         "json: where the provider's message id is in a 2xx answer; it is returned as `id=...` in the delivery's "
         "reply"),
    text("dlr_mask", &gateway_config::dlr_mask, "string", "kannel: delivery report mask, passed through"),
    text("dlr_url", &gateway_config::dlr_url, "string", "kannel: delivery report URL, passed through"),
    text("from", &gateway_config::default_from, "string", "the sender id when the campaign has no `from`"),
    whole("concurrency", &gateway_config::concurrency, 1, 1000, "requests in flight (and connections) per shard"),
    millis("connect_timeout_ms", &gateway_config::connect_timeout, 100, 600000, "TCP (and TLS) connect"),
    millis("request_timeout_ms", &gateway_config::request_timeout, 100, 600000,
           "the whole request. Run out after the request went out: `ambiguous` (the gateway may have sent it)"),
    millis("max_retry_after_ms", &gateway_config::max_retry_after, 0, 86400000,
           "a longer `Retry-After` is cut to this"),
    millis("probe_backoff_min_ms", &gateway_config::probe_backoff_min, 1, 600000,
           "a gateway that cannot be reached is suspended and probed after this; doubles per failed probe, jittered"),
    millis("probe_backoff_max_ms", &gateway_config::probe_backoff_max, 1, 3600000,
           "the longest wait between two probes of a suspended gateway"),
    millis("idle_timeout_ms", &gateway_config::idle_timeout, 1000, 3600000,
           "a keep-alive connection idle this long is not reused (keep it below the gateway's own keep-alive "
           "timeout)"),
    text("proxy", &gateway_config::proxy, "a proxy URL (`http://HOST:PORT`, `socks5h://HOST:PORT`)",
         "the proxy requests to the gateway go through. Unset, none is used, whatever `http_proxy`, `https_proxy` "
         "or `ALL_PROXY` say: the requests carry the gateway's credentials",
         "— (no proxy)"),
    flag("tls_verify", &gateway_config::tls_verify, "check the gateway's certificate and name (https)"),
    text("ca_file", &gateway_config::ca_file, "readable PEM file", "trust these CAs instead of the system store",
         "system store"),
};

constexpr config_key<gateway_config> gateway_fields_[]{
    text("to", &gateway_config::to_field, "a name (json: required)", "the recipient's number (E.164)"),
    text("from", &gateway_config::from_field, "a name; empty leaves it out", "the sender id"),
    text("text", &gateway_config::text_field, "a name (json: required)", "the message text"),
    text("encoding", &gateway_config::encoding_field, "a name; empty leaves it out", "`gsm7` or `ucs2`"),
};

// In the order they are applied: a URL before the password that goes with it, a file after the
// variable it stands for (the file wins).
const environment_variable environment_[]{
    {"BUDSTIKKE_REDIS", "Redis URL; overrides `redis.url` (and is overridden by `--redis`)",
     [](config& c, const std::string& v) { set_redis_url(c, v, "BUDSTIKKE_REDIS"); }},
    {"BUDSTIKKE_REDIS_USERNAME", "Redis ACL user name (the password then goes with it)",
     [](config& c, const std::string& v) { c.redis.username = v; }},
    {"BUDSTIKKE_REDIS_PASSWORD", "Redis password", [](config& c, const std::string& v) { c.redis.password = v; }},
    {"BUDSTIKKE_REDIS_PASSWORD_FILE", "file holding the Redis password (a trailing line break is not part of it)",
     [](config& c, const std::string& v) { c.redis.password = read_secret_file(v); }},
    {"BUDSTIKKE_SMTP_PASSWORD", "SMTP AUTH password (for `smtp.username`)",
     [](config& c, const std::string& v) { c.smtp.password = v; }},
    {"BUDSTIKKE_SMTP_PASSWORD_FILE", "file holding the SMTP AUTH password",
     [](config& c, const std::string& v) { c.smtp.password = read_secret_file(v); }},
    {"BUDSTIKKE_UNSUBSCRIBE_SECRET", "the secret that signs unsubscribe tokens, key id `0` (at least 16 bytes)",
     [](config& c, const std::string& v) { set_unsubscribe_secret(c, v, "BUDSTIKKE_UNSUBSCRIBE_SECRET"); }},
    {"BUDSTIKKE_UNSUBSCRIBE_SECRET_FILE", "file holding that secret",
     [](config& c, const std::string& v) {
       set_unsubscribe_secret(c, read_secret_file(v), fmt::format("BUDSTIKKE_UNSUBSCRIBE_SECRET_FILE '{}'", v));
     }},
    {"BUDSTIKKE_UNSUBSCRIBE_SECRETS_FILE",
     "instead of one secret, a file listing the unsubscribe keys, as `email.unsubscribe_secrets_file`",
     [](config& c, const std::string& v) { read_unsubscribe_secrets_file(c, v); }},
    {"BUDSTIKKE_SMS_PASSWORD", "the SMS gateway's password (Kannel's sendsms user, or HTTP basic auth)",
     [](config& c, const std::string& v) {
       if (c.sms.gateway) c.sms.gateway->password = v;
     }},
    {"BUDSTIKKE_SMS_PASSWORD_FILE", "file holding that password",
     [](config& c, const std::string& v) {
       if (c.sms.gateway) c.sms.gateway->password = read_secret_file(v);
     }},
    {"BUDSTIKKE_SMS_TOKEN", "the SMS gateway's bearer token (`json` gateways)",
     [](config& c, const std::string& v) {
       if (c.sms.gateway) c.sms.gateway->bearer_token = v;
     }},
    {"BUDSTIKKE_SMS_TOKEN_FILE", "file holding that token",
     [](config& c, const std::string& v) {
       if (c.sms.gateway) c.sms.gateway->bearer_token = read_secret_file(v);
     }},
};

}  // namespace

const key_table<config> redis_keys{"redis", redis_};
const key_table<queue::redis_config> redis_connection_keys{"redis", redis_connection_};
const key_table<engine_config> engine_keys{"engine", engine_};
const key_table<category_policy> category_keys{"categories", categories_};
const key_table<limits_config> limits_keys{"limits", limits_};
const key_table<quiet_rule> quiet_rule_keys{"quiet_hours", quiet_rule_};
const key_table<relay_config> relay_keys{"smtp", relay_};
const key_table<relay_config> smtp_shared_keys{"smtp", smtp_shared_};
const key_table<relay_config> relay_entry_keys{"smtp.relays", relay_entry_};
const key_table<email_config> email_keys{"email", email_};
const key_table<sms_config> sms_keys{"sms", sms_};
const key_table<gateway_config> gateway_keys{"sms.gateway", gateway_};
const key_table<gateway_config> gateway_field_keys{"sms.gateway.fields", gateway_fields_};
const std::span<const environment_variable> environment_variables{environment_};

std::string format_bound(double v) {
  if (v == std::floor(v) && std::abs(v) < 1e15) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

}  // namespace budstikke
