// Structured logs as JSON lines on stderr. Fields carry campaign and member ids, counts and
// reasons — never an e-mail address or a phone number (union membership is special-category data).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

namespace budstikke::log {

enum class level { debug, info, warn, error };

struct field {
  std::string_view key;
  std::variant<std::string_view, long long, double> value;
  field(std::string_view k, std::string_view v) : key(k), value(v) {}
  field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  template <typename T>
    requires std::is_integral_v<T>
  field(std::string_view k, T v) : key(k), value(static_cast<long long>(v)) {}
  field(std::string_view k, double v) : key(k), value(v) {}
};

void set_min_level(level l);
void write(level l, std::string_view message, std::initializer_list<field> fields = {});
inline void info(std::string_view m, std::initializer_list<field> f = {}) { write(level::info, m, f); }
inline void warn(std::string_view m, std::initializer_list<field> f = {}) { write(level::warn, m, f); }
inline void error(std::string_view m, std::initializer_list<field> f = {}) { write(level::error, m, f); }
inline void debug(std::string_view m, std::initializer_list<field> f = {}) { write(level::debug, m, f); }

}  // namespace budstikke::log
