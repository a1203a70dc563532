#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "engine/config.hpp"

using namespace budstikke::engine;
namespace fs = std::filesystem;

namespace {

fs::path write_yaml(const std::string& text) {
  static int n = 0;
  auto p = fs::temp_directory_path() / ("budstikke-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + ".yaml");
  std::ofstream(p) << text;
  return p;
}

std::string load_error(const std::string& text) {
  auto p = write_yaml(text);
  try {
    load_config(p.string());
  } catch (const config_error& e) {
    fs::remove(p);
    return e.what();
  }
  fs::remove(p);
  return "";
}

}  // namespace

TEST_CASE("engine: the example configuration loads and means a local trial") {
  ::unsetenv("BUDSTIKKE_REDIS");
  auto cfg = load_config(std::string(BUDSTIKKE_TEST_SOURCE_DIR) + "/deploy/budstikke.example.yaml");
  CHECK(cfg.redis.host == "127.0.0.1");
  CHECK(cfg.redis.port == 6379);
  CHECK(cfg.smtp.host == "127.0.0.1");
  CHECK(cfg.smtp.port == 2525);
  CHECK(cfg.engine.window == 2000);
  CHECK(cfg.key_prefix == "budstikke:");
}

TEST_CASE("engine: configuration errors name file, line, key and the bound") {
  CHECK_THAT(load_error("engine:\n  window: 0\n"), Catch::Contains(":2:11: engine.window: 0 is out of range 1..1000000"));
  CHECK_THAT(load_error("engine:\n  windw: 10\n"), Catch::Contains(":2:3: engine.windw: unknown key"));
  CHECK_THAT(load_error("smtp:\n  port: many\n"), Catch::Contains("smtp.port: expected a whole number"));
  CHECK_THAT(load_error("redis:\n  url: http://x\n"), Catch::Contains("must start with redis://"));
  CHECK_THAT(load_error("engine: [1\n"), Catch::Contains(".yaml:"));
  CHECK_THAT(load_error("smpt:\n  port: 25\n"), Catch::Contains("config.smpt: unknown key"));
}

TEST_CASE("engine: BUDSTIKKE_REDIS overrides the file") {
  auto p = write_yaml("redis:\n  url: redis://10.0.0.1:6379/0\n");
  ::setenv("BUDSTIKKE_REDIS", "redis://127.0.0.1:7000/3", 1);
  auto cfg = load_config(p.string());
  ::unsetenv("BUDSTIKKE_REDIS");
  fs::remove(p);
  CHECK(cfg.redis.port == 7000);
  CHECK(cfg.redis.database == 3);
}
