#include "config/reference.hpp"

#include <map>
#include <set>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include "config/keys.hpp"

namespace budstikke {
namespace {

std::string quoted(std::string_view s) { return fmt::format("`{}`", s); }

// "`a`", "`a` and `b`", "`a`, `b` and `c`"
std::string listed(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i)
    s += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + quoted(names[i]);
  return s;
}

template <typename Root>
std::string shown_default(const config_key<Root>& k, const Root& root) {
  if (k.shown) return k.shown(root);
  const std::string unset(k.unset.empty() ? "—" : k.unset);
  return std::visit(
      [&](auto member) -> std::string {
        if constexpr (std::is_same_v<decltype(member), std::monostate>) {
          return unset;
        } else {
          const auto& v = root.*member;
          using T = std::remove_cvref_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) return v.empty() ? unset : quoted(v);
          else if constexpr (std::is_same_v<T, bool>) return v ? "`true`" : "`false`";
          else if constexpr (std::is_same_v<T, std::chrono::milliseconds>) return fmt::format("{}", v.count());
          else if constexpr (std::is_same_v<T, std::optional<double>>) return v ? format_bound(*v) : unset;
          else return fmt::format("{}", v);
        }
      },
      k.member);
}

template <typename Root>
std::string shown_bounds(const config_key<Root>& k) {
  std::vector<std::string> parts;
  if (k.range) parts.push_back(format_bound(k.range->min) + "–" + format_bound(k.range->max));
  if (!k.choices.empty()) {
    std::string names;
    for (auto c : k.choices) names += (names.empty() ? "" : ", ") + quoted(c);
    parts.push_back(names);
  } else if (std::holds_alternative<bool Root::*>(k.member)) {
    parts.emplace_back("`true`, `false`");
  }
  if (!k.bounds.empty()) parts.emplace_back(k.bounds);
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : "; ") + p;
  return s.empty() ? "—" : s;
}

template <typename Root>
reference_row row(const config_key<Root>& k, std::string default_value) {
  return {quoted(k.name), std::move(default_value), shown_bounds(k), std::string(k.meaning)};
}

struct section_rows {
  std::string_view section;
  std::vector<reference_row> rows;
};

class reference_builder {
 public:
  template <typename Root>
  void add(const key_table<Root>& table, const Root& defaults) {
    auto& rows = section(table.section);
    for (const auto& k : table.keys) rows.push_back(row(k, shown_default(k, defaults)));
  }

  // A category's default is the built-in one of its name: "`true` for `newsletter` and `winback`,
  // else `false`".
  void add_categories(const config& defaults) {
    auto& rows = section(category_keys.section);
    for (const auto& k : category_keys.keys) {
      const auto otherwise = shown_default(k, defaults.default_category);
      std::map<std::string, std::vector<std::string>> named;  // default -> the categories that have it
      for (const auto& [name, policy] : defaults.categories)
        if (auto v = shown_default(k, policy); v != otherwise) named[v].push_back(name);
      std::string shown;
      for (const auto& [v, names] : named) shown += fmt::format("{}{} for {}", shown.empty() ? "" : "; ", v, listed(names));
      rows.push_back(row(k, shown.empty() ? otherwise : shown + ", else " + otherwise));
    }
  }

  // An entry of smtp.relays takes the relay keys of the top of `smtp` too: one row names them.
  void add_inherited_relay_keys() {
    std::vector<std::string> names;
    for (const auto& k : relay_keys.keys) names.emplace_back(k.name);
    section(relay_entry_keys.section)
        .push_back({listed(names), "the value at the top of `smtp`", "as there",
                    "the relay's own; every key an entry leaves out comes from the top of the `smtp` section "
                    "(timeouts and backoff are shared)"});
  }

  void add_environment() {
    auto& rows = section("environment");
    for (const auto& v : environment_variables) rows.push_back({quoted(v.name), "", "", std::string(v.effect)});
  }

  std::vector<section_rows> sections;

 private:
  std::vector<reference_row>& section(std::string_view name) {
    for (auto& s : sections)
      if (s.section == name) return s.rows;
    return sections.emplace_back(section_rows{name, {}}).rows;
  }
};

std::vector<section_rows> build_reference() {
  const config defaults;
  const adapters::sms_http::gateway_config gateway_defaults;  // config{} has no gateway
  reference_builder b;
  b.add_environment();
  b.add(redis_keys, defaults);
  b.add(redis_connection_keys, defaults.redis);
  b.add(engine_keys, defaults.engine);
  b.add_categories(defaults);
  b.add(limits_keys, defaults.limits);
  b.add(quiet_rule_keys, quiet_rule{});
  b.add(relay_keys, static_cast<const adapters::smtp::relay_config&>(defaults.smtp));
  b.add(smtp_shared_keys, static_cast<const adapters::smtp::relay_config&>(defaults.smtp));
  b.add(relay_entry_keys, static_cast<const adapters::smtp::relay_config&>(defaults.smtp));
  b.add_inherited_relay_keys();
  b.add(email_keys, defaults.email);
  b.add(sms_keys, defaults.sms);
  b.add(gateway_keys, gateway_defaults);
  b.add(gateway_field_keys, gateway_defaults);
  return std::move(b.sections);
}

// A '|' would end the cell.
std::string cell(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

constexpr std::string_view marker = "<!-- table: ";

}  // namespace

std::vector<std::string_view> reference_sections() {
  std::vector<std::string_view> names;
  for (const auto& s : build_reference()) names.push_back(s.section);
  return names;
}

std::vector<reference_row> reference_rows(std::string_view section) {
  for (auto& s : build_reference())
    if (s.section == section) return std::move(s.rows);
  throw std::runtime_error(fmt::format("the configuration reference has no section '{}'", section));
}

std::string reference_table(std::string_view section) {
  const auto rows = reference_rows(section);
  if (section == "environment") {
    std::string t = "| variable | effect |\n|---|---|\n";
    for (const auto& r : rows) t += fmt::format("| {} | {} |\n", cell(r.key), cell(r.meaning));
    return t;
  }
  std::string t = "| key | default | bounds | meaning |\n|---|---|---|---|\n";
  for (const auto& r : rows)
    t += fmt::format("| {} | {} | {} | {} |\n", cell(r.key), cell(r.default_value), cell(r.bounds), cell(r.meaning));
  return t;
}

std::string with_reference_tables(std::string_view markdown) {
  std::string out;
  std::set<std::string, std::less<>> written;
  bool in_old_table = false;
  std::size_t at = 0;
  while (at < markdown.size()) {
    auto end = markdown.find('\n', at);
    end = end == std::string_view::npos ? markdown.size() : end + 1;
    auto line = markdown.substr(at, end - at);
    at = end;
    if (in_old_table && line.starts_with("|")) continue;
    in_old_table = false;
    out += line;
    if (!line.starts_with(marker)) continue;
    auto name = line.substr(marker.size());
    name = name.substr(0, name.find_first_of(" \n"));
    if (!written.insert(std::string(name)).second)
      throw std::runtime_error(fmt::format("the table of '{}' is marked twice", name));
    out += reference_table(name);
    in_old_table = true;
  }
  for (auto s : reference_sections())
    if (!written.contains(s)) throw std::runtime_error(fmt::format("no table is marked for '{}'", s));
  return out;
}

}  // namespace budstikke
