// Real servers for integration tests: a redis-server and the budstikke binary's own commands,
// on free loopback ports, each stopped by the test that started it.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/process.hpp"

namespace budstikke::testing {

namespace fs = std::filesystem;

// The build passes both paths in; the environment may override them.
inline std::string budstikke_bin() {
  if (const char* b = std::getenv("BUDSTIKKE_BIN")) return b;
  return BUDSTIKKE_TEST_BIN;
}

inline std::string source_dir() {
  if (const char* s = std::getenv("BUDSTIKKE_SOURCE_DIR")) return s;
  return BUDSTIKKE_TEST_SOURCE_DIR;
}

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh directory under /tmp, removed at the end of the test.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "budstikke-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) FAIL("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

struct redis_server {
  support::child_process process;
  std::uint16_t port = 0;
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port) + "/0"; }
};

inline redis_server start_redis(const temp_dir& dir, const std::vector<std::string>& extra = {}) {
  redis_server r;
  r.port = support::free_loopback_port();
  std::vector<std::string> argv{"redis-server", "--port", std::to_string(r.port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", dir.path().string(),
                                "--logfile", (dir / "redis.log").string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  r.process = support::child_process::spawn(argv);
  REQUIRE(support::wait_for_port(r.port, std::chrono::seconds(10)));
  return r;
}

struct sink_server {
  support::child_process process;
  std::uint16_t port = 0;
};

// `budstikke sink smtp` with the given extra flags, on `port` (0: a free one), logging to dir/`log`.
inline sink_server start_own_sink(const temp_dir& dir, const std::vector<std::string>& extra = {},
                                  std::uint16_t port = 0, const std::string& log = "sink.log") {
  sink_server s;
  s.port = port != 0 ? port : support::free_loopback_port();
  std::vector<std::string> argv{budstikke_bin(), "sink", "smtp", "--listen", "127.0.0.1:" + std::to_string(s.port)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  s.process = support::child_process::spawn(argv, (dir / log).string());
  REQUIRE(support::wait_for_port(s.port, std::chrono::seconds(10)));
  return s;
}

struct cli_result {
  int code = -1;
  std::string output;  // stdout and stderr together
};

// Starts `budstikke args...` in the background, its output in dir/`log`.
inline support::child_process spawn_cli(const temp_dir& dir, const std::vector<std::string>& args,
                                        const std::string& log) {
  std::vector<std::string> argv{budstikke_bin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return support::child_process::spawn(argv, (dir / log).string());
}

// Runs `budstikke args...` to completion (bounded by `timeout`), capturing its output.
inline cli_result run_cli(const temp_dir& dir, const std::vector<std::string>& args,
                          std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
  static int n = 0;
  auto log = dir / ("cli-" + std::to_string(++n) + ".log");
  std::vector<std::string> argv{budstikke_bin()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto child = support::child_process::spawn(argv, log.string());
  auto status = child.wait_for(timeout);
  if (!status) {
    child.stop();
    FAIL("budstikke " << args.front() << " did not finish within the time limit; output: " << slurp(log));
  }
  return {status->signal ? 128 + status->signal : status->code, slurp(log)};
}

// A config file for the engine pointing at the given Redis and relay.
inline fs::path write_config(const temp_dir& dir, const redis_server& redis, std::uint16_t relay_port,
                             const std::string& extra_engine = "") {
  auto path = dir / "budstikke.yaml";
  std::ofstream out(path);
  out << "redis:\n  url: " << redis.url() << "\n"
      << "engine:\n  workers: 2\n  window: 500\n  retry_backoff_ms: 20\n  retry_backoff_max_ms: 200\n  idle_poll_ms: 100\n"
      << "  admin_listen: 127.0.0.1:0\n"  // any free port: tests run side by side
      << extra_engine
      << "smtp:\n  host: 127.0.0.1\n  port: " << relay_port << "\n  connections: 4\n"
      // Scenarios about other things send newsletters without recording consent first;
      // tests/integration/consent_test.cpp covers consent.
      << "categories:\n  newsletter:\n    consent_required: false\n";
  return path;
}

}  // namespace budstikke::testing
