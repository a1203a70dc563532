// Every configuration key, declared once: its name, the member it sets, its bounds and what it
// means. config/load.cpp reads the YAML through these tables and docs/config.md's tables are
// written from them (config/reference.hpp), so the reader, the defaults and the reference cannot
// disagree. The defaults themselves are config/config.hpp's member initialisers.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

#include "config/config.hpp"

namespace budstikke {

// A closed range of accepted values (whole numbers, milliseconds, rates, list lengths).
struct key_range {
  double min = 0;
  double max = 0;
};

// One key of a section whose values live in a Root (engine_config for `engine`, ...).
template <typename Root>
struct config_key {
  std::string_view name = {};
  // The member a plain value sets, read by the member's type: a whole number, milliseconds, a
  // string, true/false, a rate. std::monostate: config/load.cpp reads the key with code of its
  // own (a list, a mapping, a choice, a secret file); it may also give a key with a member its
  // own reader, to check more than the type (a URL, HOST:PORT, a region code).
  std::variant<std::monostate, std::size_t Root::*, std::uint16_t Root::*, unsigned Root::*,
               std::chrono::milliseconds Root::*, std::string Root::*, bool Root::*, std::optional<double> Root::*>
      member = {};
  std::optional<key_range> range = {};
  // The bound in words, after the range and the choices when the key has them.
  std::string_view bounds = {};
  std::string_view meaning = {};
  // What an empty or absent default means ("host name", "none"); "—" when not given.
  std::string_view unset = {};
  // The default as the reference shows it, for a key whose member is not a plain value.
  std::string (*shown)(const Root&) = nullptr;
  // A choice's names, in the order of its enum's values (the reference lists them as the bound).
  std::span<const std::string_view> choices = {};
};

template <typename Root>
struct key_table {
  std::string_view section;  // as the reference names it: "engine", "sms.gateway", "categories"
  std::span<const config_key<Root>> keys;

  // The key of that name; std::logic_error when the table has none (a mistake in the code).
  const config_key<Root>& at(std::string_view name) const;
};

// In the order of docs/config.md. A table's keys live in the struct that its section fills.
extern const key_table<config> redis_keys;                     // redis: url, password_file, key_prefix
extern const key_table<queue::redis_config> redis_connection_keys;  // redis: the timeouts and TLS
extern const key_table<engine_config> engine_keys;
extern const key_table<category_policy> category_keys;  // categories.NAME
extern const key_table<limits_config> limits_keys;
extern const key_table<quiet_rule> quiet_rule_keys;         // quiet_hours[i]
extern const key_table<adapters::smtp::relay_config> relay_keys;       // smtp, and each of smtp.relays
extern const key_table<adapters::smtp::relay_config> smtp_shared_keys;  // smtp only: shared by every relay
extern const key_table<adapters::smtp::relay_config> relay_entry_keys;  // smtp.relays[i] only
extern const key_table<email_config> email_keys;
extern const key_table<sms_config> sms_keys;
extern const key_table<adapters::sms_http::gateway_config> gateway_keys;         // sms.gateway
extern const key_table<adapters::sms_http::gateway_config> gateway_field_keys;  // sms.gateway.fields

// An environment variable the engine reads after the file (only when set and not empty).
struct environment_variable {
  std::string_view name;
  std::string_view effect;
  void (*apply)(config& cfg, const std::string& value);
};
extern const std::span<const environment_variable> environment_variables;

// "0.001", "1000000": how bounds appear in messages and in the reference.
std::string format_bound(double v);

template <typename Root>
const config_key<Root>& key_table<Root>::at(std::string_view name) const {
  for (const auto& k : keys)
    if (k.name == name) return k;
  throw std::logic_error("config/keys.cpp: " + std::string(section) + " has no key " + std::string(name));
}

}  // namespace budstikke
