// Configuration files for the engine's unit tests: written to a temporary file, loaded, removed.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "config/load.hpp"

namespace budstikke::testing {

inline std::filesystem::path write_yaml(const std::string& text) {
  static int n = 0;
  auto p = std::filesystem::temp_directory_path() /
           ("budstikke-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + ".yaml");
  std::ofstream(p) << text;
  return p;
}

inline config load_yaml(const std::string& text) {
  auto p = write_yaml(text);
  auto cfg = load_config(p.string());
  std::filesystem::remove(p);
  return cfg;
}

// The configuration error the text gives, or "" when it loads.
inline std::string load_error(const std::string& text) {
  auto p = write_yaml(text);
  try {
    load_config(p.string());
  } catch (const config_error& e) {
    std::filesystem::remove(p);
    return e.what();
  }
  std::filesystem::remove(p);
  return "";
}

}  // namespace budstikke::testing
