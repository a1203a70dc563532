#pragma once

// Mustache templates compiled once per campaign and rendered once per recipient.
//
// Compilation turns the template (and every partial of its set) into flat node vectors with
// pre-split dotted names; rendering walks those vectors against a boost::json::value and appends
// to a caller-owned buffer, so a render neither parses nor allocates beyond growing that buffer.
// Implements the Mustache spec v1.4 including the optional ~inheritance and ~dynamic-names
// modules; lambdas are not supported (the data model is JSON).

#include <boost/assert/source_location.hpp>
#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace budstikke::templates {

struct compile_error {
  std::string template_name;
  std::size_t line = 0;    // 1-based
  std::size_t column = 0;  // 1-based, in bytes
  std::string reason;

  std::string to_string() const;  // "name:line:column: reason"
};

// Lets result<compiled_template, compile_error>::value() throw (at start-up / CLI only).
[[noreturn]] void throw_exception_from_error(const compile_error& error, const boost::source_location& loc);

using partial_sources = std::map<std::string, std::string, std::less<>>;  // partial name -> source

enum class escape_mode { html, none };  // html for HTML parts; none for subject, text/plain, SMS

using missing_variable_fn = std::function<void(std::string_view name)>;

namespace detail {
struct template_set;
}

class compiled_template {
 public:
  // An empty template: renders nothing.
  compiled_template() = default;

  // Every entry of `partials` is compiled once (static partials, parents and dynamic partials all
  // resolve into that set); a partial name that is not in the set renders empty, as the spec
  // requires. A syntax error in the template or in any partial gives a compile_error naming the
  // source it was found in, with the 1-based line and column of the offending tag.
  static boost::system::result<compiled_template, compile_error>
  compile(std::string_view source, const partial_sources& partials = {}, std::string_view name = "template");

  // Appends the rendering to `out` (the caller clears and reuses it). Safe to call concurrently.
  // `on_missing` is called with the dotted name of every interpolated variable the context lacks.
  // Sections are falsey for null, false, 0, "" and [] (JavaScript truthiness, as in mustache.js).
  // Returns false when the rendering was cut off because it exceeded the render budget
  // (max_render_expansions partial/block expansions, or max_render_bytes of output): recursive
  // partials can otherwise grow exponentially. The output is then incomplete and must not be sent.
  bool render(const boost::json::value& context, std::string& out, escape_mode escape = escape_mode::html,
              const missing_variable_fn* on_missing = nullptr) const;

  static constexpr std::size_t max_render_expansions = 100000;
  static constexpr std::size_t max_render_bytes = 16 * 1024 * 1024;

  // Top-level variable names the template reads: first segments of the names used outside any
  // (non-inverted) section, following static partials and parents. Names used inside sections
  // may belong to the section's own value, so they are not listed. Sorted, unique.
  const std::vector<std::string>& variables() const;

  // Names of static partials and parents ({{> name}}, {{< name}}) used by the template or its
  // partials but missing from the set: they render empty, as the spec says, which is rarely what
  // a campaign means. Sorted, unique.
  const std::vector<std::string>& unresolved_partials() const;

  const std::string& name() const;

 private:
  std::shared_ptr<const detail::template_set> set_;
};

// HTML-escapes & < > " ' into `out`.
void append_html_escaped(std::string_view text, std::string& out);

}  // namespace budstikke::templates
