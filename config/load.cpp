#include "config/load.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <type_traits>
#include <variant>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "adapters/sms_http/phone.hpp"
#include "config/keys.hpp"
#include "support/host_port.hpp"
#include "support/log.hpp"
#include "templates/address.hpp"

namespace budstikke {
namespace {

// One section of the file: its keys, each with a reader that checks the bound. A section's keys
// come from a table of config/keys.hpp; keys that are not plain values get a reader of their own.
class section_reader {
 public:
  using reader = std::function<void(const YAML::Node&)>;

  section_reader(std::string file, std::string section) : file_(std::move(file)), section_(std::move(section)) {}

  // Each key of the table reads into its member of root by the member's type. A key without one
  // waits for custom(); reading it before that is a mistake in this file.
  template <typename Root>
  void bind(const key_table<Root>& table, Root& root) {
    bound_ = true;
    for (const auto& k : table.keys) {
      const std::string key(k.name);
      std::visit(
          [&](auto member) {
            if constexpr (std::is_same_v<decltype(member), std::monostate>) {
              readers_[key] = [key, section = table.section](const YAML::Node&) {
                throw std::logic_error(fmt::format("config/load.cpp does not read {}.{}", section, key));
              };
            } else {
              read_into(key, root.*member, k.range);
            }
          },
          k.member);
    }
  }

  // A key's own reader. Once a table is bound, only a key it declares can have one.
  void custom(const std::string& key, reader read) {
    if (bound_ && !readers_.count(key))
      throw std::logic_error(fmt::format("config/keys.cpp does not declare {}.{}", section_, key));
    readers_[key] = std::move(read);
  }

  // A string the caller checks later (a URL, a secret file's name).
  void text(const std::string& key, std::string& target) { custom(key, string_reader(key, target)); }

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

  // A rate in messages per second: a positive number, fractions allowed (0.5 = one every 2 s).
  double rate(const YAML::Node& n, const std::string& key, const key_range& range) const {
    double v = 0;
    try {
      v = n.as<double>();
    } catch (const YAML::Exception&) {
      fail(n, key, fmt::format("expected messages per second, got '{}'", n.Scalar()));
    }
    if (!(v >= range.min && v <= range.max))
      fail(n, key, fmt::format("{} per second is out of range {}..{}", n.Scalar(), format_bound(range.min),
                               format_bound(range.max)));
    return v;
  }

 private:
  template <typename T>
  void read_into(const std::string& key, T& target, const std::optional<key_range>& range) {
    if constexpr (std::is_same_v<T, std::string>) {
      readers_[key] = string_reader(key, target);
    } else if constexpr (std::is_same_v<T, bool>) {
      readers_[key] = [this, key, &target](const YAML::Node& n) {
        try {
          target = n.as<bool>();
        } catch (const YAML::Exception&) {
          fail(n, key, fmt::format("expected true or false, got '{}'", n.Scalar()));
        }
      };
    } else if constexpr (std::is_same_v<T, std::optional<double>>) {
      readers_[key] = [this, key, &target, range = range.value()](const YAML::Node& n) { target = rate(n, key, range); };
    } else if constexpr (std::is_same_v<T, std::chrono::milliseconds>) {
      readers_[key] = [this, key, &target, min = bound(range->min), max = bound(range->max)](const YAML::Node& n) {
        long long v = 0;
        try {
          v = n.as<long long>();
        } catch (const YAML::Exception&) {
          fail(n, key, fmt::format("expected milliseconds, got '{}'", n.Scalar()));
        }
        if (v < min || v > max) fail(n, key, fmt::format("{} ms is out of range {}..{}", v, min, max));
        target = std::chrono::milliseconds(v);
      };
    } else {
      static_assert(std::is_integral_v<T>);
      readers_[key] = [this, key, &target, min = bound(range->min), max = bound(range->max)](const YAML::Node& n) {
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
  }

  reader string_reader(const std::string& key, std::string& target) {
    return [this, key, &target](const YAML::Node& n) {
      if (!n.IsScalar()) fail(n, key, "expected a string");
      target = n.Scalar();
    };
  }

  static long long bound(double v) { return static_cast<long long>(v); }

  std::string file_;
  std::string section_;
  std::map<std::string, reader> readers_;
  bool bound_ = false;
};

// The value of a choice key (its names in the order of the enum's values), or nothing.
template <typename E, typename Root>
std::optional<E> choice(const config_key<Root>& k, std::string_view name) {
  for (std::size_t i = 0; i < k.choices.size(); ++i)
    if (k.choices[i] == name) return static_cast<E>(i);
  return std::nullopt;
}

// "none, starttls or implicit" (last = " or "), "kannel, json" (last = ", ")
template <typename Root>
std::string choice_names(const config_key<Root>& k, std::string_view last) {
  std::string s;
  for (std::size_t i = 0; i < k.choices.size(); ++i)
    s += fmt::format("{}{}", i == 0 ? "" : i + 1 == k.choices.size() ? last : ", ", k.choices[i]);
  return s;
}

// categories: {NAME: {resend_ambiguous: [email, sms]}}; the name `default` sets the fallback.
void read_categories(const std::string& path, const YAML::Node& node, config& cfg) {
  section_reader outer(path, "categories");
  if (!node.IsMap()) outer.fail(node, "", "expected a mapping of category names");
  for (const auto& kv : node) {
    auto name = kv.first.as<std::string>();
    category_policy policy;
    section_reader cat(path, "categories." + name);
    cat.bind(category_keys, policy);
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
constexpr std::size_t max_unsubscribe_keys = 16;

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
  r.bind(gateway_keys, g);
  r.custom("kind", [&](const YAML::Node& n) {
    const auto& k = gateway_keys.at("kind");
    auto v = n.as<std::string>();
    auto kind = choice<sh::gateway_kind>(k, v);
    if (!kind) r.fail(n, "kind", fmt::format("'{}' is not a gateway kind ({})", v, choice_names(k, ", ")));
    g.kind = *kind;
  });
  r.custom("url", [&](const YAML::Node& n) {
    read_url(r, n, "url", "http", g.url);
    if (g.url.rfind("http://", 0) != 0 && g.url.rfind("https://", 0) != 0)
      r.fail(n, "url", "expected an http:// or https:// URL");
  });
  r.custom("method", [&](const YAML::Node& n) {
    const auto& k = gateway_keys.at("method");
    auto v = n.as<std::string>();
    auto method = choice<sh::http_method>(k, v);
    if (!method) r.fail(n, "method", fmt::format("'{}' is not a method ({})", v, choice_names(k, ", ")));
    g.method = *method;
  });
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
    f.bind(gateway_field_keys, g);
    f.read(n);
  });
  r.read(node);
  if (g.url.empty()) r.fail(node, "url", "the gateway needs a url");
  if (g.kind == sh::gateway_kind::kannel && g.method == sh::http_method::put)
    r.fail(node, "method", "Kannel's sendsms takes get or post");
  if (g.kind == sh::gateway_kind::json && g.method == sh::http_method::get)
    r.fail(node, "method", "a JSON gateway takes post or put");
  if (g.kind == sh::gateway_kind::json && (g.to_field.empty() || g.text_field.empty()))
    r.fail(node, "fields", "the to and text fields need names");
}

// The tokens are what a portal trusts to unsubscribe a member: no headers without a secret, and
// one secret or one list, never both (which of them signs would be a matter of reading order).
// Each secret's length was checked where it was read.
void check_unsubscribe(const config& cfg, const std::string& where, bool secret_in_file, bool list_in_file) {
  auto in_environment = [](const char* name) {
    const char* v = std::getenv(name);
    return v && *v;
  };
  const bool secret = secret_in_file || in_environment("BUDSTIKKE_UNSUBSCRIBE_SECRET") ||
                      in_environment("BUDSTIKKE_UNSUBSCRIBE_SECRET_FILE");
  const bool list = list_in_file || in_environment("BUDSTIKKE_UNSUBSCRIBE_SECRETS_FILE");
  if (secret && list)
    throw config_error(fmt::format(
        "{}: both an unsubscribe secret (BUDSTIKKE_UNSUBSCRIBE_SECRET, BUDSTIKKE_UNSUBSCRIBE_SECRET_FILE or "
        "email.unsubscribe_secret_file) and a list of them (email.unsubscribe_secrets_file or "
        "BUDSTIKKE_UNSUBSCRIBE_SECRETS_FILE) are given: keep the list only, with the secret in it",
        where));
  const auto& e = cfg.email;
  if ((e.unsubscribe_url.empty() && e.unsubscribe_mailto.empty()) || e.unsubscribe_categories.empty()) return;
  if (!e.has_unsubscribe_secret()) {
    std::string categories;
    for (const auto& c : e.unsubscribe_categories) categories += (categories.empty() ? "" : ", ") + c;
    throw config_error(fmt::format(
        "{}: List-Unsubscribe is configured for {} but there is no secret to sign its tokens: set "
        "BUDSTIKKE_UNSUBSCRIBE_SECRET, BUDSTIKKE_UNSUBSCRIBE_SECRET_FILE, email.unsubscribe_secret_file, "
        "email.unsubscribe_secrets_file or BUDSTIKKE_UNSUBSCRIBE_SECRETS_FILE",
        where, categories));
  }
}

// The keys a relay can set, at the top of `smtp` (the one-relay case and the defaults) and in
// each entry of smtp.relays, that are not plain values.
void read_relay_keys(section_reader& r, adapters::smtp::relay_config& c, std::string& password_file) {
  r.custom("tls", [&r, &c](const YAML::Node& n) {
    const auto& k = relay_keys.at("tls");
    auto v = n.IsScalar() ? n.Scalar() : std::string();
    auto tls = choice<adapters::smtp::tls_mode>(k, v);
    if (!tls) r.fail(n, "tls", fmt::format("expected {}, got '{}'", choice_names(k, " or "), v));
    c.tls = *tls;
  });
  r.text("password_file", password_file);
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

void log_gateway_event(std::string_view event, std::string_view gateway, std::string_view detail) {
  if (detail.empty()) log::info(event, {{"gateway", gateway}});
  else log::warn(event, {{"gateway", gateway}, {"reason", detail}});
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
  const auto count = *smtp_shared_keys.at("relays").range;
  if (!relays.IsSequence() || relays.size() < count.min)
    outer.fail(relays, "relays", "expected a list of relays, e.g. [{host: relay1.example, port: 587}]");
  if (relays.size() > count.max) outer.fail(relays, "relays", fmt::format("at most {} relays", format_bound(count.max)));
  for (std::size_t i = 0; i < relays.size(); ++i) {
    adapters::smtp::relay_config r = s;  // the top-level keys are the defaults
    std::string password_file;
    auto where = fmt::format("smtp.relays[{}]", i);
    section_reader reader(path, where);
    reader.bind(relay_keys, r);
    reader.bind(relay_entry_keys, r);
    read_relay_keys(reader, r, password_file);
    reader.read(relays[i]);
    if (!password_file.empty()) r.password = read_secret_file(password_file);
    check_relay_auth(r, path + ": " + where);
    s.relays.push_back(std::move(r));
  }
}

// limits: {global, email, sms, domains: {DOMAIN: rate}, tenants: {NAME: rate}, burst_ms}
void read_limits(const std::string& path, const YAML::Node& node, limits_config& l) {
  section_reader r(path, "limits");
  r.bind(limits_keys, l);
  r.custom("domains", [&](const YAML::Node& n) {
    if (!n.IsMap()) r.fail(n, "domains", "expected a mapping of domains to rates, e.g. {gmail.com: 100}");
    const auto range = *limits_keys.at("domains").range;
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
      l.domains[ascii] = r.rate(kv.second, "domains." + kv.first.Scalar(), range);
    }
  });
  r.custom("tenants", [&](const YAML::Node& n) {
    if (!n.IsMap()) r.fail(n, "tenants", "expected a mapping of tenant names to rates, e.g. {forbundet-ost: 50}");
    const auto range = *limits_keys.at("tenants").range;
    for (const auto& kv : n) l.tenants[kv.first.as<std::string>()] = r.rate(kv.second, "tenants." + kv.first.Scalar(), range);
  });
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
    r.bind(quiet_rule_keys, q);
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

void set_unsubscribe_secret(config& cfg, std::string secret, std::string_view where) {
  if (secret.size() < min_unsubscribe_secret)
    throw config_error(fmt::format("{}: the unsubscribe secret is shorter than {} bytes", where, min_unsubscribe_secret));
  cfg.email.unsubscribe_secret = std::move(secret);
  cfg.email.unsubscribe_key_id = "0";
  cfg.email.unsubscribe_accepted_keys.clear();
}

void read_unsubscribe_secrets_file(config& cfg, const std::string& path) {
  std::istringstream text(read_secret_file(path));
  std::vector<templates::unsubscribe_key> keys;
  std::string line;
  for (int number = 1; std::getline(text, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::istringstream fields(line);
    std::string id, secret, more;
    fields >> id >> secret >> more;
    if (id.empty() || id.front() == '#') continue;
    // Never the secret in a message: the file and line say where.
    const auto where = fmt::format("{}:{}", path, number);
    if (secret.empty() || !more.empty())
      throw config_error(fmt::format("{}: expected KEYID SECRET (the secret without blanks)", where));
    if (!templates::valid_unsubscribe_key_id(id))
      throw config_error(fmt::format("{}: '{}' is not a key id (1 to 8 of A-Z a-z 0-9 _ -)", where, id));
    for (const auto& k : keys)
      if (k.id == id) throw config_error(fmt::format("{}: key id '{}' is given twice", where, id));
    if (secret.size() < min_unsubscribe_secret)
      throw config_error(fmt::format("{}: the secret of key '{}' is shorter than {} bytes", where, id,
                                     min_unsubscribe_secret));
    if (keys.size() == max_unsubscribe_keys)
      throw config_error(fmt::format("{}: more than {} keys", where, max_unsubscribe_keys));
    keys.push_back({std::move(id), std::move(secret)});
  }
  if (keys.empty()) throw config_error(fmt::format("{}: no unsubscribe keys (one KEYID SECRET a line)", path));
  cfg.email.unsubscribe_key_id = std::move(keys.front().id);
  cfg.email.unsubscribe_secret = std::move(keys.front().secret);
  keys.erase(keys.begin());
  cfg.email.unsubscribe_accepted_keys = std::move(keys);
}

std::vector<templates::unsubscribe_key> email_config::unsubscribe_keys() const {
  std::vector<templates::unsubscribe_key> keys;
  if (!has_unsubscribe_secret()) return keys;
  keys.push_back({unsubscribe_key_id, unsubscribe_secret});
  keys.insert(keys.end(), unsubscribe_accepted_keys.begin(), unsubscribe_accepted_keys.end());
  return keys;
}

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
  auto parsed = queue::parse_redis_url(url);
  if (!parsed) throw config_error(fmt::format("{}: {}", where, parsed.error().message));
  // The URL names the server; timeouts, back-off and TLS files stay as configured, and a user or
  // password given apart (redis.password_file, BUDSTIKKE_REDIS_PASSWORD) stays when the URL has none.
  auto& r = cfg.redis;
  r.host = parsed->host;
  r.port = parsed->port;
  r.database = parsed->database;
  r.tls = parsed->tls;
  if (!parsed->username.empty()) r.username = parsed->username;
  if (!parsed->password.empty()) r.password = parsed->password;
}

void check_redis_tls(const config& cfg) {
  if (cfg.redis.tls) return;
  for (auto [key, value] : {std::pair{"tls_ca_file", &cfg.redis.tls_ca_file}, std::pair{"tls_cert_file", &cfg.redis.tls_cert_file},
                            std::pair{"tls_key_file", &cfg.redis.tls_key_file},
                            std::pair{"tls_server_name", &cfg.redis.tls_server_name}})
    if (!value->empty())
      throw config_error(fmt::format("redis.{} is set, but the Redis URL (redis://{}) is not TLS: use rediss:// "
                                     "for TLS, or remove the redis.tls_* settings",
                                     key, queue::describe(cfg.redis)));
}

void apply_environment(config& cfg) {
  for (const auto& v : environment_variables)
    if (const char* value = std::getenv(std::string(v.name).c_str()); value && *value) v.apply(cfg, value);
}

config default_config() {
  config cfg;
  apply_environment(cfg);
  finish_smtp("defaults", std::nullopt, cfg);
  check_unsubscribe(cfg, "environment", false, false);
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
    check_unsubscribe(cfg, path, false, false);
    return cfg;
  }

  section_reader top(path, "config");
  std::string redis_url, redis_password_file;
  section_reader redis(path, "redis");
  redis.bind(redis_keys, cfg);
  redis.bind(redis_connection_keys, cfg.redis);
  redis.text("url", redis_url);
  redis.text("password_file", redis_password_file);

  auto& e = cfg.engine;
  section_reader eng(path, "engine");
  eng.bind(engine_keys, e);
  for (auto [name, target] : {std::pair{"admin_listen", &e.admin_listen}, std::pair{"probe_listen", &e.probe_listen},
                               std::pair{"unsubscribe_listen", &e.unsubscribe_listen}}) {
    eng.custom(name, [&eng, name, target](const YAML::Node& n) {
      if (!n.IsScalar()) eng.fail(n, name, "expected HOST:PORT or an empty string");
      if (!n.Scalar().empty() && !support::parse_host_port(n.Scalar()))
        eng.fail(n, name, fmt::format("'{}' is not HOST:PORT (IPv6 as [::1]:9464)", n.Scalar()));
      *target = n.Scalar();
    });
  }
  eng.custom("tenant_weights", [&](const YAML::Node& n) {
    if (!n.IsMap()) eng.fail(n, "tenant_weights", "expected a mapping of tenant names to weights, e.g. {oslo: 2}");
    const auto range = *engine_keys.at("tenant_weights").range;
    for (const auto& kv : n) {
      int w = 0;
      try {
        w = kv.second.as<int>();
      } catch (const YAML::Exception&) {
        eng.fail(kv.second, "tenant_weights", "expected a whole number");
      }
      if (w < range.min || w > range.max)
        eng.fail(kv.second, "tenant_weights",
                 fmt::format("{} is out of range {}..{}", w, format_bound(range.min), format_bound(range.max)));
      e.tenant_weights[kv.first.as<std::string>()] = w;
    }
  });

  adapters::smtp::relay_config& s = cfg.smtp;  // the relay keys live in its base
  section_reader smtp(path, "smtp");
  std::string smtp_password_file;
  std::optional<YAML::Node> smtp_relays;
  smtp.bind(relay_keys, s);
  smtp.bind(smtp_shared_keys, s);
  read_relay_keys(smtp, s, smtp_password_file);
  smtp.custom("relays", [&](const YAML::Node& n) { smtp_relays = n; });

  section_reader email(path, "email");
  email.bind(email_keys, cfg.email);
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
  std::string unsubscribe_secret_file, unsubscribe_secrets_file;
  email.text("unsubscribe_secret_file", unsubscribe_secret_file);
  email.text("unsubscribe_secrets_file", unsubscribe_secrets_file);

  section_reader sms(path, "sms");
  sms.bind(sms_keys, cfg.sms);
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
  if (!unsubscribe_secret_file.empty())
    set_unsubscribe_secret(cfg, read_secret_file(unsubscribe_secret_file),
                           fmt::format("{}: email.unsubscribe_secret_file '{}'", path, unsubscribe_secret_file));
  if (!unsubscribe_secrets_file.empty()) read_unsubscribe_secrets_file(cfg, unsubscribe_secrets_file);
  if (!smtp_password_file.empty()) cfg.smtp.password = read_secret_file(smtp_password_file);
  if (!sms_password_file.empty()) cfg.sms.gateway->password = read_secret_file(sms_password_file);
  if (!sms_token_file.empty()) cfg.sms.gateway->bearer_token = read_secret_file(sms_token_file);
  if (cfg.sms.gateway) cfg.sms.gateway->log = log_gateway_event;
  apply_environment(cfg);
  finish_smtp(path, smtp_relays, cfg);
  check_unsubscribe(cfg, path, !unsubscribe_secret_file.empty(), !unsubscribe_secrets_file.empty());
  return cfg;
}

}  // namespace budstikke
