#include "templates/mustache.hpp"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace tpl = budstikke::templates;
namespace json = boost::json;

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string_view as_view(const json::string& s) { return {s.data(), s.size()}; }

}  // namespace

TEST_CASE("mustache spec: every case of every spec file", "[templates][mustache][spec]") {
  const std::filesystem::path dir = BUDSTIKKE_MUSTACHE_SPEC_DIR;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() == 8);

  std::size_t run = 0;
  std::size_t passed = 0;
  std::string out;
  for (const auto& file : files) {
    const auto spec = json::parse(read_file(file));
    for (const auto& test : spec.at("tests").as_array()) {
      const auto& name = test.at("name").as_string();
      tpl::partial_sources partials;
      if (const auto* p = test.as_object().if_contains("partials")) {
        for (const auto& [key, value] : p->as_object())
          partials.emplace(std::string(key), std::string(as_view(value.as_string())));
      }
      ++run;
      INFO(file.filename().string() << ": " << as_view(name));
      auto compiled = tpl::compiled_template::compile(as_view(test.at("template").as_string()), partials);
      if (!compiled) {
        FAIL_CHECK("compile error: " << compiled.error().to_string());
        continue;
      }
      out.clear();
      compiled->render(test.at("data"), out);
      const auto expected = as_view(test.at("expected").as_string());
      CHECK(out == expected);
      if (out == expected) ++passed;
    }
  }
  std::cout << "mustache spec: " << run << " run, " << passed << " passed\n";
  CHECK(run == 184);
  CHECK(passed == run);
}
