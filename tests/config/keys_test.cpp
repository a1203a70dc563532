#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <type_traits>
#include <variant>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "config/keys.hpp"
#include "config/load.hpp"
#include "config/reference.hpp"
#include "tests/support/yaml_files.hpp"

using namespace budstikke;
namespace fs = std::filesystem;
using adapters::sms_http::gateway_config;
using adapters::smtp::relay_config;
using budstikke::testing::load_error;
using budstikke::testing::load_yaml;
using budstikke::testing::write_yaml;

namespace {

// Where a table's keys sit in a file, and where their values land in the loaded config.
template <typename Root>
struct placement {
  const key_table<Root>& table;
  std::string where;  // the section as error messages name it
  // The file with one key set; with key "" only what the section needs to exist.
  std::function<std::string(const std::string& key, const std::string& value)> yaml;
  std::function<const Root&(const config&)> root;
  std::function<Root()> defaults;  // what the section holds when the file sets none of its keys
  std::set<std::string> set_by_yaml = {};  // keys yaml("", "") sets itself
};

std::string line(const std::string& indent, const std::string& key, const std::string& value) {
  return key.empty() ? "" : indent + key + ": " + value + "\n";
}

const std::string gateway_url = "http://gw.example/send";

// Calls f with the placement of every key table (a relay's keys twice: at the top of smtp and in
// an entry of smtp.relays).
// (config() rather than config{}: GCC 12 stops with an internal error on the latter in these
// lambdas.)
template <typename F>
void for_each_placement(F&& f) {
  auto top = [](std::string section) {
    return [section](const std::string& k, const std::string& v) {
      return k.empty() ? section + ": {}\n" : section + ":\n" + line("  ", k, v);
    };
  };
  auto relay_entry = [](const std::string& k, const std::string& v) {
    return "smtp:\n  relays:\n" + (k.empty() ? std::string("    - {}\n") : "    - " + k + ": " + v + "\n");
  };
  auto gateway = [](const std::string& k, const std::string& v) {
    return "sms:\n  gateway:\n" + (k == "url" ? "" : "    url: " + gateway_url + "\n") + line("    ", k, v);
  };
  f(placement<config>{redis_keys, "redis", top("redis"), [](const config& c) -> const config& { return c; },
                      [] { return config(); }});
  f(placement<queue::redis_config>{redis_connection_keys, "redis", top("redis"),
                                   [](const config& c) -> const queue::redis_config& { return c.redis; },
                                   [] { return config().redis; }});
  f(placement<engine_config>{engine_keys, "engine", top("engine"),
                             [](const config& c) -> const engine_config& { return c.engine; },
                             [] { return config().engine; }});
  f(placement<category_policy>{
      category_keys, "categories.receipt",
      [](const std::string& k, const std::string& v) {
        return k.empty() ? std::string("categories:\n  receipt: {}\n") : "categories:\n  receipt:\n" + line("    ", k, v);
      },
      [](const config& c) -> const category_policy& { return c.policy("receipt"); },
      [] { return config().default_category; }});
  f(placement<limits_config>{limits_keys, "limits", top("limits"),
                             [](const config& c) -> const limits_config& { return c.limits; },
                             [] { return config().limits; }});
  f(placement<quiet_rule>{quiet_rule_keys, "quiet_hours[0]",
                          [](const std::string& k, const std::string& v) {
                            std::map<std::string, std::string> rule{
                                {"channel", "sms"}, {"from", "\"21:00\""}, {"to", "\"08:00\""}, {"timezone", "UTC"}};
                            if (!k.empty()) rule[k] = v;
                            std::string s;
                            for (const auto& [key, value] : rule) s += (s.empty() ? "" : ", ") + key + ": " + value;
                            return "quiet_hours:\n  - {" + s + "}\n";
                          },
                          [](const config& c) -> const quiet_rule& { return c.quiet_hours.at(0); },
                          [] { return quiet_rule{}; }});
  f(placement<relay_config>{relay_keys, "smtp", top("smtp"),
                            [](const config& c) -> const relay_config& { return c.smtp; },
                            [] { return relay_config(config().smtp); }});
  f(placement<relay_config>{relay_keys, "smtp.relays[0]", relay_entry,
                            [](const config& c) -> const relay_config& { return c.smtp.relays.at(0); },
                            [] { return relay_config(config().smtp); }});
  f(placement<relay_config>{smtp_shared_keys, "smtp", top("smtp"),
                            [](const config& c) -> const relay_config& { return c.smtp; },
                            [] { return relay_config(config().smtp); }});
  f(placement<relay_config>{relay_entry_keys, "smtp.relays[0]", relay_entry,
                            [](const config& c) -> const relay_config& { return c.smtp.relays.at(0); },
                            [] { return relay_config(config().smtp); }});
  f(placement<email_config>{email_keys, "email", top("email"),
                            [](const config& c) -> const email_config& { return c.email; },
                            [] { return config().email; }});
  f(placement<sms_config>{sms_keys, "sms", top("sms"), [](const config& c) -> const sms_config& { return c.sms; },
                          [] { return config().sms; }});
  f(placement<gateway_config>{gateway_keys, "sms.gateway", gateway,
                              [](const config& c) -> const gateway_config& { return c.sms.gateway.value(); },
                              [] { return gateway_config(); }, {"url"}});
  f(placement<gateway_config>{
      gateway_field_keys, "sms.gateway.fields",
      [](const std::string& k, const std::string& v) {
        return "sms:\n  gateway:\n    url: " + gateway_url + "\n" + (k.empty() ? "" : "    fields:\n" + line("      ", k, v));
      },
      [](const config& c) -> const gateway_config& { return c.sms.gateway.value(); }, [] { return gateway_config(); },
      {"url"}});
}

// Secrets some keys need before the file loads at all; the environment is otherwise left alone.
struct test_environment {
  fs::path secret = write_yaml("a-secret-of-at-least-16-bytes\n");
  fs::path unsubscribe_keys = write_yaml("k1 a-secret-of-at-least-16-bytes\n");
  test_environment() {
    for (const auto& v : environment_variables) ::unsetenv(std::string(v.name).c_str());
    ::setenv("BUDSTIKKE_SMTP_PASSWORD", "smtp-password", 1);  // for `username`
    ::setenv("BUDSTIKKE_UNSUBSCRIBE_SECRET", "unsubscribe-secret-0123456789", 1);  // for the URLs
  }
  ~test_environment() {
    ::unsetenv("BUDSTIKKE_SMTP_PASSWORD");
    ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRET");
    fs::remove(secret);
    fs::remove(unsubscribe_keys);
  }
};

// Strings that the key's own reader checks: a value it accepts.
const std::map<std::string, std::string> accepted_text{
    {"engine.admin_listen", "127.0.0.1:1"},
    {"engine.probe_listen", "127.0.0.1:2"},
    {"engine.unsubscribe_listen", "[::1]:3"},
    {"email.unsubscribe_url", "https://min.example/avmeld?t={token}"},
    {"email.unsubscribe_mailto", "mailto:avmeld@min.example?subject={token}"},
    {"sms.default_region", "SE"},
    {"sms.gateway.url", "https://other-gw.example/send"},
};

// A value each key without a plain member accepts (secret files: the test's secret).
std::map<std::string, std::string> own_reader_samples(const fs::path& secret, const fs::path& unsubscribe_keys) {
  return {
      {"redis.url", "redis://10.0.0.1:6380/2"},
      {"redis.password_file", secret.string()},
      {"engine.tenant_weights", "{oslo: 3}"},
      {"categories.resend_ambiguous", "[sms]"},
      {"limits.domains", "{gmail.com: 10}"},
      {"limits.tenants", "{ost: 5}"},
      {"quiet_hours.channel", "email"},
      {"quiet_hours.categories", "[newsletter]"},
      {"quiet_hours.from", "\"22:00\""},
      {"quiet_hours.to", "\"07:00:30\""},
      {"quiet_hours.timezone", "Europe/Oslo"},
      {"smtp.tls", "starttls"},
      {"smtp.password_file", secret.string()},
      {"smtp.relays", "[{host: relay1.example}]"},
      {"email.unsubscribe_categories", "[winback]"},
      {"email.unsubscribe_secret_file", secret.string()},
      {"email.unsubscribe_secrets_file", unsubscribe_keys.string()},
      {"sms.gateway", "{url: " + gateway_url + "}"},
      {"sms.gateway.kind", "json"},
      {"sms.gateway.method", "post"},
      {"sms.gateway.password_file", secret.string()},
      {"sms.gateway.bearer_token_file", secret.string()},
      {"sms.gateway.headers", "{X-Api-Version: \"2\"}"},
      {"sms.gateway.fields", "{to: recipient}"},
  };
}

std::string name_of(std::string_view section, std::string_view key) { return fmt::format("{}.{}", section, key); }

template <typename T>
constexpr bool is_whole = std::is_integral_v<T> && !std::is_same_v<T, bool>;

// The member's type, without the pointer to member around it.
template <typename M>
struct member_type;
template <typename Root, typename T>
struct member_type<T Root::*> {
  using type = T;
};

const reference_row* find_row(std::string_view section, std::string_view key) {
  static std::map<std::string, std::vector<reference_row>, std::less<>> rows;
  auto it = rows.find(section);
  if (it == rows.end()) it = rows.emplace(std::string(section), reference_rows(section)).first;
  for (const auto& r : it->second)
    if (r.key == fmt::format("`{}`", key)) return &r;
  return nullptr;
}

}  // namespace

TEST_CASE("keys: every key with a member sets that member, and only it is read") {
  test_environment env;
  for_each_placement([&](const auto& p) {
    const auto defaults = p.defaults();
    for (const auto& k : p.table.keys) {
      std::visit(
          [&](auto member) {
            if constexpr (!std::is_same_v<decltype(member), std::monostate>) {
              using T = typename member_type<decltype(member)>::type;
              const auto before = defaults.*member;
              T want{};
              std::string text;
              if constexpr (is_whole<T>) {
                want = static_cast<T>(before + 1 <= k.range->max ? before + 1 : before - 1);
                text = std::to_string(want);
              } else if constexpr (std::is_same_v<T, std::chrono::milliseconds>) {
                const auto ms = before.count() + 1 <= k.range->max ? before.count() + 1 : before.count() - 1;
                want = std::chrono::milliseconds(ms);
                text = std::to_string(ms);
              } else if constexpr (std::is_same_v<T, std::string>) {
                auto it = accepted_text.find(name_of(p.table.section, k.name));
                want = it == accepted_text.end() ? "set-by-the-test" : it->second;
                text = "\"" + want + "\"";
              } else if constexpr (std::is_same_v<T, bool>) {
                want = !before;
                text = want ? "true" : "false";
              } else {
                static_assert(std::is_same_v<T, std::optional<double>>);
                want = 0.5;
                text = "0.5";
              }
              INFO(p.where << "." << k.name << ": " << text);
              auto cfg = load_yaml(p.yaml(std::string(k.name), text));
              CHECK((p.root(cfg).*member) == want);
              CHECK_FALSE((p.root(cfg).*member) == before);
            }
          },
          k.member);
    }
  });
}

TEST_CASE("keys: every key without a plain member has a reader of its own") {
  test_environment env;
  // No key here sets a URL, and a secret list does not go with the environment's secret.
  ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRET");
  const auto samples = own_reader_samples(env.secret, env.unsubscribe_keys);
  for_each_placement([&](const auto& p) {
    for (const auto& k : p.table.keys) {
      if (!std::holds_alternative<std::monostate>(k.member)) continue;
      auto sample = samples.find(name_of(p.table.section, k.name));
      INFO(p.where << "." << k.name);
      REQUIRE(sample != samples.end());  // a new key needs a value here
      CHECK(load_error(p.yaml(std::string(k.name), sample->second)).empty());
    }
  });
}

TEST_CASE("keys: a value out of range names file, line, column, key and the range") {
  test_environment env;
  for_each_placement([&](const auto& p) {
    for (const auto& k : p.table.keys) {
      std::visit(
          [&](auto member) {
            if constexpr (!std::is_same_v<decltype(member), std::monostate>) {
              using T = typename member_type<decltype(member)>::type;
              const std::string where = std::regex_replace(p.where + "." + std::string(k.name), std::regex(R"([.\[\]])"), R"(\$&)");
              auto expect = [&](const std::string& value, const std::string& why) {
                INFO(p.where << "." << k.name << ": " << value);
                auto error = load_error(p.yaml(std::string(k.name), value));
                CHECK_THAT(error, Catch::Matches(R"(.*\.yaml:\d+:\d+: )" + where + ": " + why));
              };
              if constexpr (is_whole<T> || std::is_same_v<T, std::chrono::milliseconds>) {
                const auto min = static_cast<long long>(k.range->min), max = static_cast<long long>(k.range->max);
                const std::string unit = is_whole<T> ? "" : " ms";
                expect(std::to_string(max + 1), fmt::format("{}{} is out of range {}\\.\\.{}", max + 1, unit, min, max));
                expect(std::to_string(min - 1), fmt::format("{}{} is out of range {}\\.\\.{}", min - 1, unit, min, max));
                expect("lots", fmt::format("expected {}, got 'lots'", is_whole<T> ? "a whole number" : "milliseconds"));
              } else if constexpr (std::is_same_v<T, std::optional<double>>) {
                expect("0", "0 per second is out of range 0\\.001\\.\\.1000000");
                expect("1000001", "1000001 per second is out of range 0\\.001\\.\\.1000000");
                expect("fast", "expected messages per second, got 'fast'");
              } else if constexpr (std::is_same_v<T, bool>) {
                expect("maybe", "expected true or false, got 'maybe'");
              }
            }
          },
          k.member);
    }
  });
}

TEST_CASE("keys: bounds that custom readers check come from the table") {
  test_environment env;
  CHECK_THAT(load_error("engine:\n  tenant_weights: {oslo: 101}\n"),
             Catch::Contains(":2:26: engine.tenant_weights: 101 is out of range 1..100"));
  CHECK_THAT(load_error("engine:\n  tenant_weights: {oslo: 0}\n"),
             Catch::Contains("engine.tenant_weights: 0 is out of range 1..100"));
  CHECK_THAT(load_error("limits:\n  tenants: {ost: 0}\n"),
             Catch::Contains("limits.tenants.ost: 0 per second is out of range 0.001..1000000"));
  std::string relays = "smtp:\n  relays:\n";
  for (int i = 0; i < 33; ++i) relays += "    - {host: relay" + std::to_string(i) + ".example}\n";
  CHECK_THAT(load_error(relays), Catch::Contains("smtp.relays: at most 32 relays"));
  CHECK_THAT(load_error("smtp:\n  relays: []\n"), Catch::Contains("smtp.relays: expected a list of relays"));
  CHECK_THAT(load_error("smtp:\n  tls: tls\n"), Catch::Contains("smtp.tls: expected none, starttls or implicit, got 'tls'"));
  CHECK_THAT(load_error("sms:\n  gateway: {url: " + gateway_url + ", kind: smpp}\n"),
             Catch::Contains("sms.gateway.kind: 'smpp' is not a gateway kind (kannel, json)"));
  CHECK_THAT(load_error("sms:\n  gateway: {url: " + gateway_url + ", method: patch}\n"),
             Catch::Contains("sms.gateway.method: 'patch' is not a method (get, post, put)"));
}

TEST_CASE("keys: unknown keys are errors that list the table's keys") {
  test_environment env;
  for_each_placement([&](const auto& p) {
    INFO(p.where);
    auto error = load_error(p.yaml("no_such_key", "1"));
    CHECK_THAT(error, Catch::Contains(p.where + ".no_such_key: unknown key (known keys: "));
    for (const auto& k : p.table.keys) CHECK_THAT(error, Catch::Contains(std::string(k.name)));
  });
}

TEST_CASE("keys: a file that sets nothing gives config()'s defaults, and the reference shows them") {
  test_environment env;
  for_each_placement([&](const auto& p) {
    const auto cfg = load_yaml(p.yaml("", ""));
    const auto defaults = p.defaults();
    for (const auto& k : p.table.keys) {
      std::visit(
          [&](auto member) {
            if constexpr (!std::is_same_v<decltype(member), std::monostate>) {
              using T = typename member_type<decltype(member)>::type;
              INFO(p.where << "." << k.name);
              const auto& value = defaults.*member;
              if (!p.set_by_yaml.count(std::string(k.name))) CHECK((p.root(cfg).*member) == value);

              std::string shown;
              if constexpr (is_whole<T>) shown = std::to_string(value);
              else if constexpr (std::is_same_v<T, std::chrono::milliseconds>) shown = std::to_string(value.count());
              else if constexpr (std::is_same_v<T, bool>) shown = value ? "`true`" : "`false`";
              else if constexpr (std::is_same_v<T, std::string>)
                shown = value.empty() ? std::string(k.unset.empty() ? "—" : k.unset) : "`" + value + "`";
              else shown = value ? fmt::format("{}", *value) : std::string(k.unset);
              const auto* row = find_row(p.table.section, k.name);
              REQUIRE(row);
              // A category's row names the built-in categories that differ first.
              if (p.table.section == "categories") CHECK_THAT(row->default_value, Catch::EndsWith(shown));
              else CHECK(row->default_value == shown);
            }
          },
          k.member);
    }
  });
}

TEST_CASE("keys: every environment variable the table lists is applied") {
  test_environment env;
  ::unsetenv("BUDSTIKKE_SMTP_PASSWORD");
  ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRET");
  const std::string yaml = "sms:\n  gateway: {url: " + gateway_url + "}\n";
  auto fingerprint = [](const config& c) {
    std::string unsubscribe_keys;
    for (const auto& k : c.email.unsubscribe_keys()) unsubscribe_keys += k.id + "=" + k.secret + ";";
    return fmt::format("{} {} {} {} {} {} {} {}", queue::describe(c.redis), c.redis.username, c.redis.password,
                       c.smtp.password, unsubscribe_keys, c.sms.gateway->password, c.sms.gateway->bearer_token,
                       c.redis.connect_timeout.count());
  };
  // Values each variable accepts: a secret file, a list of keys, a URL, a long enough secret.
  const std::map<std::string, std::string> values{
      {"BUDSTIKKE_REDIS", "redis://10.0.0.9:7000/3"},
      {"BUDSTIKKE_UNSUBSCRIBE_SECRET", "from-env-0123456789"},
      {"BUDSTIKKE_UNSUBSCRIBE_SECRETS_FILE", env.unsubscribe_keys.string()},
  };
  const auto plain = fingerprint(load_yaml(yaml));
  for (const auto& v : environment_variables) {
    const std::string name(v.name);
    INFO(name);
    const bool file = name.ends_with("_FILE");
    const auto value = values.find(name);
    ::setenv(name.c_str(), value != values.end() ? value->second.c_str() : file ? env.secret.c_str() : "from-env", 1);
    auto cfg = load_yaml(yaml);
    ::unsetenv(name.c_str());
    CHECK(fingerprint(cfg) != plain);
    if (file) CHECK_THAT(fingerprint(cfg), Catch::Contains("a-secret-of-at-least-16-bytes"));
  }
}
