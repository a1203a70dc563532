// Template compiler and renderer: any source, any data; compile errors must be reported, never crash.
// Input: template source, then optionally NUL and a JSON document used as data and as partial "p".
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "templates/mustache.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto nul = in.find('\0');
  std::string_view source = in.substr(0, nul);
  std::string_view rest = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);

  boost::system::error_code ec;
  boost::json::value context = boost::json::parse(rest, ec);
  if (ec) context = boost::json::object{{"name", "Åse"}, {"items", boost::json::array{1, "x", nullptr}}};
  budstikke::templates::partial_sources partials{{"p", std::string(rest)}, {"self", std::string(source)}};

  auto compiled = budstikke::templates::compiled_template::compile(source, partials, "fuzz");
  if (!compiled) {
    auto message = compiled.error().to_string();
    if (message.empty()) __builtin_trap();
    return 0;
  }
  std::string out;
  compiled->render(context, out, budstikke::templates::escape_mode::html);
  out.clear();
  compiled->render(context, out, budstikke::templates::escape_mode::none);
  return 0;
}
