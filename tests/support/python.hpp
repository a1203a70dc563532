// Debian's Python and its packages (python3-aiosmtpd, python3-dkim, python3-redis) as test peers:
// they belong to /usr/bin/python3, not to whatever python3 comes first on PATH.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "support/process.hpp"

namespace budstikke::testing {

inline constexpr const char* debian_python = "/usr/bin/python3";

// True when /usr/bin/python3 can import `module` (e.g. "aiosmtpd.controller").
inline bool python_module_available(const std::string& module) {
  if (!std::filesystem::exists(debian_python)) return false;
  auto child = support::child_process::spawn({debian_python, "-c", "import " + module}, std::string("/dev/null"));
  auto st = child.wait_for(std::chrono::seconds(10));
  return st && st->exited_normally();
}

}  // namespace budstikke::testing
