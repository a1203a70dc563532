#include "config/load.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "adapters/sms_http/phone.hpp"
#include "support/host_port.hpp"
#include "support/log.hpp"
#include "templates/address.hpp"

namespace budstikke {
namespace {

// One section of the file: its keys, each with a reader that checks the bound.
class section_reader {
 public:
  section_reader(std::string file, std::string section) : file_(std::move(file)), section_(std::move(section)) {}

  template <typename T>
  void integer(const std::string& key, T& target, long long min, long long max) {
    readers_[key] = [this, key, &target, min, max](const YAML::Node& n) {
      long long v = 0;
      try {
        v = n.as<long long>();
      } catch (const YAML::Exception&) {
        fail(n, key, fmt::format("expected a whole number, got '{}'", n.Scalar()));
      }
      if (v < min || v > max) fail(n, key, fmt::format("{} is out of range {}..{}", v, min, max));
      target = static_cast<T>(v);
    };
  }

  void millis(const std::string& key, std::chrono::milliseconds& target, long long min, long long max) {
    readers_[key] = [this, key, &target, min, max](const YAML::Node& n) {
      long long v = 0;
      try {
        v = n.as<long long>();
      } catch (const YAML::Exception&) {
        fail(n, key, fmt::format("expected milliseconds, got '{}'", n.Scalar()));
      }
      if (v < min || v > max) fail(n, key, fmt::format("{} ms is out of range {}..{}", v, min, max));
      target = std::chrono::milliseconds(v);
    };
  }

  void text(const std::string& key, std::string& target) {
    readers_[key] = [this, key, &target](const YAML::Node& n) {
      if (!n.IsScalar()) fail(n, key, "expected a string");
      target = n.Scalar();
    };
  }

  void custom(const std::string& key, std::function<void(const YAML::Node&)> read) {
    readers_[key] = std::move(read);
  }

  void read(const YAML::Node& node) {
    if (!node) return;
    if (!node.IsMap()) fail(node, "", "expected a mapping of keys");
    for (const auto& kv : node) {
      auto key = kv.first.as<std::string>();
      auto it = readers_.find(key);
      if (it == readers_.end()) {
        std::string known;
        for (const auto& [k, _] : readers_) known += (known.empty() ? "" : ", ") + k;
        fail(kv.first, key, fmt::format("unknown key (known keys: {})", known));
      }
      it->second(kv.second);
    }
  }

  [[noreturn]] void fail(const YAML::Node& n, const std::string& key, const std::string& why) const {
    auto mark = n.Mark();
    std::string where = key.empty() ? section_ : section_ + "." + key;
    throw config_error(fmt::format("{}:{}:{}: {}: {}", file_, mark.line + 1, mark.column + 1, where, why));
  }

 private:
  std::string file_;
  std::string section_;
  std::map<std::string, std::function<void(const YAML::Node&)>> readers_;
};

std::string read_secret_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw config_error(fmt::format("cannot read secret file '{}'", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

void set_redis_url(config& cfg, const std::string& url, const std::string& where) {
  std::string error;
  auto parsed = queue::parse_redis_url(url, error);
  if (!parsed) throw config_error(fmt::format("{}: {}", where, error));
  parsed->connect_timeout = cfg.redis.connect_timeout;
  parsed->command_timeout = cfg.redis.command_timeout;
  cfg.redis = *parsed;
}

// categories: {NAME: {resend_ambiguous: [email, sms]}}; the name `default` sets the fallback.
void read_categories(const std::string& path, const YAML::Node& node, config& cfg) {
  section_reader outer(path, "categories");
  if (!node.IsMap()) outer.fail(node, "", "expected a mapping of category names");
  for (const auto& kv : node) {
    auto name = kv.first.as<std::string>();
    category_policy policy;
    section_reader cat(path, "categories." + name);
    cat.custom("resend_ambiguous", [&](const YAML::Node& n) {
      if (!n.IsSequence()) cat.fail(n, "resend_ambiguous", "expected a list of channels, e.g. [email]");
      policy.resend_ambiguous_email = policy.resend_ambiguous_sms = false;
      for (const auto& ch : n) {
        auto c = ch.as<std::string>();
        if (c == "email") policy.resend_ambiguous_email = true;
        else if (c == "sms") policy.resend_ambiguous_sms = true;
        else cat.fail(ch, "resend_ambiguous", fmt::format("'{}' is not a channel (email, sms)", c));
      }
    });
    cat.custom("consent_required", [&](const YAML::Node& n) {
      try {
        policy.consent_required = n.as<bool>();
      } catch (const YAML::Exception&) {
        cat.fail(n, "consent_required", "expected true or false");
      }
    });
    cat.custom("check_consent", [&](const YAML::Node& n) {
      try {
        policy.check_consent = n.as<bool>();
      } catch (const YAML::Exception&) {
        cat.fail(n, "check_consent", "expected true or false");
      }
    });
    // A category named in the file starts from its built-in policy.
    if (name == "default") policy = cfg.default_category;
    else if (auto it = cfg.categories.find(name); it != cfg.categories.end()) policy = it->second;
    cat.read(kv.second);
    if (policy.consent_required && !policy.check_consent)
      cat.fail(kv.second, "check_consent", "false, but consent_required is true: a grant cannot be required without reading it");
    if (name == "default") cfg.default_category = policy;
    else cfg.categories[name] = policy;
  }
}

constexpr std::size_t min_unsubscribe_secret = 16;

void read_url(section_reader& r, const YAML::Node& n, const std::string& key, std::string_view scheme, std::string& target) {
  if (!n.IsScalar()) r.fail(n, key, "expected a string");
  const auto& v = n.Scalar();
  if (!v.empty() && v.rfind(scheme, 0) != 0) r.fail(n, key, fmt::format("expected a URL starting with {}", scheme));
  for (unsigned char c : v)
    if (c <= 0x20 || c >= 0x7F || c == '<' || c == '>' || c == ',' || c == '"')
      r.fail(n, key, "the URL must be ASCII without blanks, quotes, '<', '>' or ','");
  target = v;
}

// sms.gateway: one HTTP gateway (Kannel's sendsms or a JSON API). Secrets come from files or the
// environment (applied later), never from the YAML itself.
void read_sms_gateway(const std::string& path, const YAML::Node& node, adapters::sms_http::gateway_config& g,
                      std::string& password_file, std::string& token_file) {
  namespace sh = adapters::sms_http;
  section_reader r(path, "sms.gateway");
  bool method_set = false;
  r.custom("kind", [&](const YAML::Node& n) {
    auto v = n.as<std::string>();
    if (v == "kannel") g.kind = sh::gateway_kind::kannel;
    else if (v == "json") g.kind = sh::gateway_kind::json;
    else r.fail(n, "kind", fmt::format("'{}' is not a gateway kind (kannel, json)", v));
  });
  r.custom("url", [&](const YAML::Node& n) {
    read_url(r, n, "url", "http", g.url);
    if (g.url.rfind("http://", 0) != 0 && g.url.rfind("https://", 0) != 0)
      r.fail(n, "url", "expected an http:// or https:// URL");
  });
  r.custom("method", [&](const YAML::Node& n) {
    auto v = n.as<std::string>();
    method_set = true;
    if (v == "get") g.method = sh::http_method::get;
    else if (v == "post") g.method = sh::http_method::post;
    else if (v == "put") g.method = sh::http_method::put;
    else r.fail(n, "method", fmt::format("'{}' is not a method (get, post, put)", v));
  });
  r.text("username", g.username);
  r.text("password_file", password_file);
  r.text("bearer_token_file", token_file);
  r.custom("headers", [&](const YAML::Node& n) {
    if (!n.IsMap()) r.fail(n, "headers", "expected a mapping of header names to values");
    for (const auto& kv : n) {
      auto name = kv.first.as<std::string>(), value = kv.second.as<std::string>();
      for (char c : name + value)
        if (c == '\r' || c == '\n' || c == '\0') r.fail(kv.first, "headers", "a header must not contain line breaks");
      g.headers.emplace_back(name, value);
    }
  });
  r.custom("fields", [&](const YAML::Node& n) {
    section_reader f(path, "sms.gateway.fields");
    f.text("to", g.to_field);
    f.text("from", g.from_field);
    f.text("text", g.text_field);
    f.text("encoding", g.encoding_field);
    f.read(n);
  });
  r.text("id_path", g.id_path);
  r.text("dlr_mask", g.dlr_mask);
  r.text("dlr_url", g.dlr_url);
  r.text("from", g.default_from);
  r.integer("concurrency", g.concurrency, 1, 1000);
  r.millis("connect_timeout_ms", g.connect_timeout, 100, 600000);
  r.millis("request_timeout_ms", g.request_timeout, 100, 600000);
  r.millis("max_retry_after_ms", g.max_retry_after, 0, 86400000);
  r.millis("idle_timeout_ms", g.idle_timeout, 1000, 3600000);
  r.custom("tls_verify", [&](const YAML::Node& n) {
    try {
      g.tls_verify = n.as<bool>();
    } catch (const YAML::Exception&) {
      r.fail(n, "tls_verify", "expected true or false");
    }
  });
  r.text("ca_file", g.ca_file);
  r.read(node);
  if (g.url.empty()) r.fail(node, "url", "the gateway needs a url");
  if (!method_set) g.method = g.kind == sh::gateway_kind::kannel ? sh::http_method::get : sh::http_method::post;
  if (g.kind == sh::gateway_kind::kannel && g.method == sh::http_method::put)
    r.fail(node, "method", "Kannel's sendsms takes get or post");
  if (g.kind == sh::gateway_kind::json && g.method == sh::http_method::get)
    r.fail(node, "method", "a JSON gateway takes post or put");
  if (g.kind == sh::gateway_kind::json && (g.to_field.empty() || g.text_field.empty()))
    r.fail(node, "fields", "the to and text fields need names");
}

void apply_sms_environment(config& cfg) {
  if (!cfg.sms.gateway) return;
  auto& g = *cfg.sms.gateway;
  if (const char* pw = std::getenv("BUDSTIKKE_SMS_PASSWORD"); pw && *pw) g.password = pw;
  if (const char* f = std::getenv("BUDSTIKKE_SMS_PASSWORD_FILE"); f && *f) g.password = read_secret_file(f);
  if (const char* t = std::getenv("BUDSTIKKE_SMS_TOKEN"); t && *t) g.bearer_token = t;
  if (const char* f = std::getenv("BUDSTIKKE_SMS_TOKEN_FILE"); f && *f) g.bearer_token = read_secret_file(f);
}

// The tokens are what a portal trusts to unsubscribe a member: no headers without a secret.
void check_unsubscribe(const config& cfg, const std::string& where) {
  const auto& e = cfg.email;
  if ((e.unsubscribe_url.empty() && e.unsubscribe_mailto.empty()) || e.unsubscribe_categories.empty()) return;
  if (e.unsubscribe_secret.empty()) {
    std::string categories;
    for (const auto& c : e.unsubscribe_categories) categories += (categories.empty() ? "" : ", ") + c;
    throw config_error(fmt::format(
        "{}: List-Unsubscribe is configured for {} but there is no secret to sign its tokens: set "
        "BUDSTIKKE_UNSUBSCRIBE_SECRET, BUDSTIKKE_UNSUBSCRIBE_SECRET_FILE or email.unsubscribe_secret_file",
        where, categories));
  }
  if (e.unsubscribe_secret.size() < min_unsubscribe_secret)
    throw config_error(fmt::format("{}: the unsubscribe secret is shorter than {} bytes", where, min_unsubscribe_secret));
}

void read_bool(section_reader& r, const YAML::Node& n, const std::string& key, bool& target) {
  try {
    target = n.as<bool>();
  } catch (const YAML::Exception&) {
    r.fail(n, key, fmt::format("expected true or false, got '{}'", n.Scalar()));
  }
}

// The keys a relay can set: at the top of `smtp` (the one-relay case and the defaults) and in
// each entry of smtp.relays.
void add_relay_keys(section_reader& r, adapters::smtp::relay_config& c, std::string& password_file, bool per_relay) {
  r.text("host", c.host);
  r.integer("port", c.port, 1, 65535);
  if (per_relay) r.integer("weight", c.weight, 1, 1000);
  r.text("helo_name", c.helo_name);
  r.integer("connections", c.connections, 1, 1000);
  r.integer("max_messages_per_connection", c.max_messages_per_connection, 1, 10000000);
  r.custom("tls", [&r, &c](const YAML::Node& n) {
    auto v = n.IsScalar() ? n.Scalar() : std::string();
    if (v == "none") c.tls = adapters::smtp::tls_mode::none;
    else if (v == "starttls") c.tls = adapters::smtp::tls_mode::starttls;
    else if (v == "implicit") c.tls = adapters::smtp::tls_mode::implicit;
    else r.fail(n, "tls", fmt::format("expected none, starttls or implicit, got '{}'", v));
  });
  r.custom("tls_verify", [&r, &c](const YAML::Node& n) { read_bool(r, n, "tls_verify", c.tls_verify); });
  r.text("ca_file", c.ca_file);
  r.text("tls_server_name", c.tls_server_name);
  r.text("username", c.username);
  r.text("password_file", password_file);
  r.custom("allow_auth_without_tls",
           [&r, &c](const YAML::Node& n) { read_bool(r, n, "allow_auth_without_tls", c.allow_auth_without_tls); });
}

void check_relay_auth(const adapters::smtp::relay_config& c, const std::string& where) {
  if (!c.username.empty() && c.password.empty()) {
    throw config_error(fmt::format(
        "{}: username is set but there is no password: set BUDSTIKKE_SMTP_PASSWORD, "
        "BUDSTIKKE_SMTP_PASSWORD_FILE or password_file",
        where));
  }
}

void log_smtp_event(adapters::smtp::log_level l, std::string_view event, std::string_view relay,
                    std::string_view detail) {
  auto level = l == adapters::smtp::log_level::error ? log::level::error
               : l == adapters::smtp::log_level::warn ? log::level::warn
                                                      : log::level::info;
  log::write(level, event, {{"relay", relay}, {"reason", detail}});
}

// After the environment is applied: the relays inherit every top-level smtp key (and the shared
// password); a relay's own password_file wins.
void finish_smtp(const std::string& path, const std::optional<YAML::Node>& relays_node, config& cfg) {
  auto& s = cfg.smtp;
  s.log = log_smtp_event;
  s.relays.clear();
  if (!relays_node) {
    check_relay_auth(s, path + ": smtp");
    return;
  }
  const YAML::Node& relays = *relays_node;
  section_reader outer(path, "smtp");
  if (!relays.IsSequence() || relays.size() == 0)
    outer.fail(relays, "relays", "expected a list of relays, e.g. [{host: relay1.example, port: 587}]");
  if (relays.size() > adapters::smtp::smtp_config::max_relays)
    outer.fail(relays, "relays", fmt::format("at most {} relays", adapters::smtp::smtp_config::max_relays));
  for (std::size_t i = 0; i < relays.size(); ++i) {
    adapters::smtp::relay_config r = s;  // the top-level keys are the defaults
    std::string password_file;
    auto where = fmt::format("smtp.relays[{}]", i);
    section_reader reader(path, where);
    add_relay_keys(reader, r, password_file, true);
    reader.read(relays[i]);
    if (!password_file.empty()) r.password = read_secret_file(password_file);
    check_relay_auth(r, path + ": " + where);
    s.relays.push_back(std::move(r));
  }
}

// A rate in messages per second: a positive number, fractions allowed (0.5 = one every 2 s).
double read_rate(const section_reader& r, const YAML::Node& n, const std::string& key) {
  double v = 0;
  try {
    v = n.as<double>();
  } catch (const YAML::Exception&) {
    r.fail(n, key, fmt::format("expected messages per second, got '{}'", n.Scalar()));
  }
  if (!(v >= 0.001 && v <= max_rate))
    r.fail(n, key, fmt::format("{} per second is out of range 0.001..1000000", n.Scalar()));
  return v;
}

// limits: {global, email, sms, domains: {DOMAIN: rate}, tenants: {NAME: rate}, burst_ms}
void read_limits(const std::string& path, const YAML::Node& node, limits_config& l) {
  section_reader r(path, "limits");
  r.custom("global", [&](const YAML::Node& n) { l.global = read_rate(r, n, "global"); });
  r.custom("email", [&](const YAML::Node& n) { l.email = read_rate(r, n, "email"); });
  r.custom("sms", [&](const YAML::Node& n) { l.sms = read_rate(r, n, "sms"); });
  r.custom("domains", [&](const YAML::Node& n) {
    if (!n.IsMap()) r.fail(n, "domains", "expected a mapping of domains to rates, e.g. {gmail.com: 100}");
    for (const auto& kv : n) {
      auto name = kv.first.as<std::string>();
      if (!name.empty() && name.front() == '.') name.erase(0, 1);
      // The envelope carries the ASCII form: an IDN domain is matched as xn--.
      std::string address;
      bool utf8 = false;
      if (templates::prepare_email_address("x@" + name, address, utf8))
        r.fail(kv.first, "domains", fmt::format("'{}' is not a domain name", kv.first.Scalar()));
      std::string ascii(templates::address_domain(address));
      for (auto& c : ascii) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (l.domains.count(ascii)) r.fail(kv.first, "domains", fmt::format("'{}' is listed twice", ascii));
      l.domains[ascii] = read_rate(r, kv.second, "domains." + kv.first.Scalar());
    }
  });
  r.custom("tenants", [&](const YAML::Node& n) {
    if (!n.IsMap()) r.fail(n, "tenants", "expected a mapping of tenant names to rates, e.g. {forbundet-ost: 50}");
    for (const auto& kv : n) l.tenants[kv.first.as<std::string>()] = read_rate(r, kv.second, "tenants." + kv.first.Scalar());
  });
  r.millis("burst_ms", l.burst, 0, 1000);
  r.read(node);
}

// quiet_hours: [{channel, categories, from, to, timezone}]
void read_quiet_hours(const std::string& path, const YAML::Node& node, std::vector<quiet_rule>& rules) {
  section_reader outer(path, "quiet_hours");
  if (!node.IsSequence())
    outer.fail(node, "", "expected a list, e.g. [{channel: sms, from: \"21:00\", to: \"08:00\", timezone: Europe/Oslo}]");
  for (std::size_t i = 0; i < node.size(); ++i) {
    quiet_rule q;
    bool has_channel = false, has_from = false, has_to = false, has_zone = false;
    section_reader r(path, fmt::format("quiet_hours[{}]", i));
    r.custom("channel", [&](const YAML::Node& n) {
      auto ch = queue::parse_channel(n.IsScalar() ? n.Scalar() : std::string());
      if (!ch) r.fail(n, "channel", fmt::format("'{}' is not a channel (email, sms)", n.Scalar()));
      q.channel = *ch;
      has_channel = true;
    });
    r.custom("categories", [&](const YAML::Node& n) {
      if (!n.IsSequence() || n.size() == 0)
        r.fail(n, "categories", "expected a list of categories, e.g. [newsletter, winback] (leave out for all)");
      for (const auto& c : n) q.categories.push_back(c.as<std::string>());
    });
    auto time_of_day = [&](const char* key, int& target, bool& seen) {
      r.custom(key, [&r, &target, &seen, key](const YAML::Node& n) {
        auto t = parse_time_of_day(n.IsScalar() ? n.Scalar() : std::string());
        if (!t) r.fail(n, key, fmt::format("expected \"HH:MM\" or \"HH:MM:SS\", got '{}'", n.Scalar()));
        target = *t;
        seen = true;
      });
    };
    time_of_day("from", q.from, has_from);
    time_of_day("to", q.to, has_to);
    r.custom("timezone", [&](const YAML::Node& n) {
      q.timezone = n.IsScalar() ? n.Scalar() : std::string();
      if (!known_time_zone(q.timezone))
        r.fail(n, "timezone", fmt::format("'{}' is not a time zone (an IANA id such as Europe/Oslo)", q.timezone));
      has_zone = true;
    });
    r.read(node[i]);
    if (!has_channel || !has_from || !has_to || !has_zone)
      r.fail(node[i], "", "needs channel, from, to and timezone");
    if (q.from == q.to) r.fail(node[i], "to", "from and to are the same time: an empty window");
    rules.push_back(std::move(q));
  }
}

}  // namespace

bool email_config::unsubscribe_enabled(std::string_view category) const {
  if (unsubscribe_url.empty() && unsubscribe_mailto.empty()) return false;
  for (const auto& c : unsubscribe_categories)
    if (c == category) return true;
  return false;
}

void apply_environment(config& cfg) {
  if (const char* url = std::getenv("BUDSTIKKE_REDIS"); url && *url) set_redis_url(cfg, url, "BUDSTIKKE_REDIS");
  if (const char* pw = std::getenv("BUDSTIKKE_REDIS_PASSWORD"); pw && *pw) cfg.redis.password = pw;
  if (const char* f = std::getenv("BUDSTIKKE_REDIS_PASSWORD_FILE"); f && *f) cfg.redis.password = read_secret_file(f);
  if (const char* pw = std::getenv("BUDSTIKKE_SMTP_PASSWORD"); pw && *pw) cfg.smtp.password = pw;
  if (const char* f = std::getenv("BUDSTIKKE_SMTP_PASSWORD_FILE"); f && *f) cfg.smtp.password = read_secret_file(f);
  if (const char* s = std::getenv("BUDSTIKKE_UNSUBSCRIBE_SECRET"); s && *s) cfg.email.unsubscribe_secret = s;
  if (const char* f = std::getenv("BUDSTIKKE_UNSUBSCRIBE_SECRET_FILE"); f && *f)
    cfg.email.unsubscribe_secret = read_secret_file(f);
  apply_sms_environment(cfg);
}

config default_config() {
  config cfg;
  apply_environment(cfg);
  finish_smtp("defaults", std::nullopt, cfg);
  return cfg;
}

config load_config(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw config_error(fmt::format("{}: cannot open the configuration file", path));
  } catch (const YAML::ParserException& e) {
    throw config_error(fmt::format("{}:{}:{}: {}", path, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  config cfg;
  if (root.IsNull()) {
    apply_environment(cfg);
    finish_smtp(path, std::nullopt, cfg);
    return cfg;
  }

  section_reader top(path, "config");
  std::string redis_url, redis_password_file;
  section_reader redis(path, "redis");
  redis.text("url", redis_url);
  redis.text("password_file", redis_password_file);
  redis.text("key_prefix", cfg.key_prefix);
  redis.millis("connect_timeout_ms", cfg.redis.connect_timeout, 100, 600000);
  redis.millis("command_timeout_ms", cfg.redis.command_timeout, 100, 600000);

  auto& e = cfg.engine;
  section_reader eng(path, "engine");
  eng.integer("workers", e.workers, 0, 256);
  eng.integer("window", e.window, 1, 1000000);
  eng.integer("read_batch", e.read_batch, 1, 10000);
  eng.integer("record_batch", e.record_batch, 1, 10000);
  eng.millis("record_interval_ms", e.record_interval, 1, 10000);
  eng.millis("registry_interval_ms", e.registry_interval, 50, 600000);
  eng.millis("idle_poll_ms", e.idle_poll, 10, 60000);
  eng.text("consumer", e.consumer);
  eng.integer("max_attempts", e.max_attempts, 1, 100);
  eng.millis("retry_backoff_ms", e.retry_backoff, 1, 3600000);
  eng.millis("retry_poll_ms", e.retry_poll, 10, 60000);
  eng.integer("events_max_len", e.events_max_len, 0, 1000000000);
  eng.millis("shutdown_grace_ms", e.shutdown_grace, 0, 600000);
  eng.integer("send_window", e.send_window, 0, 100000);
  eng.millis("heartbeat_interval_ms", e.heartbeat_interval, 100, 600000);
  eng.millis("consumer_timeout_ms", e.consumer_timeout, 1000, 3600000);
  eng.integer("max_deliveries", e.max_deliveries, 1, 1000);
  eng.custom("admin_listen", [&](const YAML::Node& n) {
    if (!n.IsScalar()) eng.fail(n, "admin_listen", "expected HOST:PORT or an empty string");
    if (!n.Scalar().empty() && !support::parse_host_port(n.Scalar()))
      eng.fail(n, "admin_listen", fmt::format("'{}' is not HOST:PORT (IPv6 as [::1]:9464)", n.Scalar()));
    e.admin_listen = n.Scalar();
  });
  eng.custom("tenant_weights", [&](const YAML::Node& n) {
    if (!n.IsMap()) eng.fail(n, "tenant_weights", "expected a mapping of tenant names to weights, e.g. {oslo: 2}");
    for (const auto& kv : n) {
      int w = 0;
      try {
        w = kv.second.as<int>();
      } catch (const YAML::Exception&) {
        eng.fail(kv.second, "tenant_weights", "expected a whole number");
      }
      if (w < 1 || w > 100) eng.fail(kv.second, "tenant_weights", fmt::format("{} is out of range 1..100", w));
      e.tenant_weights[kv.first.as<std::string>()] = w;
    }
  });

  auto& s = cfg.smtp;
  section_reader smtp(path, "smtp");
  std::string smtp_password_file;
  std::optional<YAML::Node> smtp_relays;
  add_relay_keys(smtp, s, smtp_password_file, false);
  smtp.millis("connect_timeout_ms", s.connect_timeout, 100, 600000);
  smtp.millis("command_timeout_ms", s.command_timeout, 100, 600000);
  smtp.millis("data_timeout_ms", s.data_timeout, 100, 3600000);
  smtp.millis("idle_timeout_ms", s.idle_timeout, 100, 3600000);
  smtp.millis("reconnect_backoff_min_ms", s.reconnect_backoff_min, 1, 600000);
  smtp.millis("reconnect_backoff_max_ms", s.reconnect_backoff_max, 1, 3600000);
  smtp.custom("relays", [&](const YAML::Node& n) { smtp_relays = n; });

  section_reader email(path, "email");
  email.text("message_id_domain", cfg.email.message_id_domain);
  email.custom("unsubscribe_url", [&](const YAML::Node& n) {
    read_url(email, n, "unsubscribe_url", "https://", cfg.email.unsubscribe_url);
    if (!cfg.email.unsubscribe_url.empty() && cfg.email.unsubscribe_url.find("{token}") == std::string::npos)
      email.fail(n, "unsubscribe_url", "the URL must contain {token}");
  });
  email.custom("unsubscribe_mailto", [&](const YAML::Node& n) {
    read_url(email, n, "unsubscribe_mailto", "mailto:", cfg.email.unsubscribe_mailto);
  });
  email.custom("unsubscribe_categories", [&](const YAML::Node& n) {
    if (!n.IsSequence()) email.fail(n, "unsubscribe_categories", "expected a list of categories, e.g. [newsletter]");
    cfg.email.unsubscribe_categories.clear();
    for (const auto& c : n) cfg.email.unsubscribe_categories.push_back(c.as<std::string>());
  });
  std::string unsubscribe_secret_file;
  email.text("unsubscribe_secret_file", unsubscribe_secret_file);

  section_reader sms(path, "sms");
  sms.custom("normalise", [&](const YAML::Node& n) {
    try {
      cfg.sms.normalise = n.as<bool>();
    } catch (const YAML::Exception&) {
      sms.fail(n, "normalise", fmt::format("expected true or false, got '{}'", n.Scalar()));
    }
  });
  sms.integer("max_segments", cfg.sms.max_segments, 1, 255);
  sms.custom("default_region", [&](const YAML::Node& n) {
    cfg.sms.default_region = n.as<std::string>();
    if (!adapters::sms_http::is_known_region(cfg.sms.default_region))
      sms.fail(n, "default_region", fmt::format("'{}' is not a region code (NO, SE, DK, ...)", cfg.sms.default_region));
  });
  std::string sms_password_file, sms_token_file;
  sms.custom("gateway", [&](const YAML::Node& n) {
    read_sms_gateway(path, n, cfg.sms.gateway.emplace(), sms_password_file, sms_token_file);
  });

  top.custom("categories", [&](const YAML::Node& n) { read_categories(path, n, cfg); });
  top.custom("redis", [&](const YAML::Node& n) { redis.read(n); });
  top.custom("engine", [&](const YAML::Node& n) { eng.read(n); });
  top.custom("smtp", [&](const YAML::Node& n) { smtp.read(n); });
  top.custom("email", [&](const YAML::Node& n) { email.read(n); });
  top.custom("sms", [&](const YAML::Node& n) { sms.read(n); });
  top.custom("limits", [&](const YAML::Node& n) { read_limits(path, n, cfg.limits); });
  top.custom("quiet_hours", [&](const YAML::Node& n) { read_quiet_hours(path, n, cfg.quiet_hours); });
  top.read(root);

  if (cfg.engine.heartbeat_interval * 2 > cfg.engine.consumer_timeout)
    throw config_error(fmt::format("{}: engine.consumer_timeout_ms must be at least twice engine.heartbeat_interval_ms", path));
  if (!redis_url.empty()) set_redis_url(cfg, redis_url, path + ": redis.url");
  if (!redis_password_file.empty()) cfg.redis.password = read_secret_file(redis_password_file);
  if (!unsubscribe_secret_file.empty()) cfg.email.unsubscribe_secret = read_secret_file(unsubscribe_secret_file);
  if (!smtp_password_file.empty()) cfg.smtp.password = read_secret_file(smtp_password_file);
  if (!sms_password_file.empty()) cfg.sms.gateway->password = read_secret_file(sms_password_file);
  if (!sms_token_file.empty()) cfg.sms.gateway->bearer_token = read_secret_file(sms_token_file);
  apply_environment(cfg);
  finish_smtp(path, smtp_relays, cfg);
  check_unsubscribe(cfg, path);
  return cfg;
}

}  // namespace budstikke
