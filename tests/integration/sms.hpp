// Shared steps of the SMS scenarios: the project's SMS sink, an engine config with an SMS
// gateway, members with phone numbers, the sink's store and counts.
#pragma once

#include <cstdlib>
#include <map>
#include <regex>
#include <string>
#include <string_view>

#include "tests/integration/e2e.hpp"

namespace budstikke::testing {

// `budstikke sink sms` storing what it accepts in dir/sms.jsonl, with the given extra flags, on
// `port` (0: a free one), logging to dir/`log`.
inline sink_server start_sms_sink(const temp_dir& dir, const std::vector<std::string>& extra = {},
                                  std::uint16_t port = 0, const std::string& log = "sms-sink.log") {
  sink_server s;
  s.port = port != 0 ? port : support::free_loopback_port();
  std::vector<std::string> argv{budstikke_bin(), "sink", "sms", "--listen", "127.0.0.1:" + std::to_string(s.port),
                                "--store", (dir / "sms.jsonl").string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  s.process = support::child_process::spawn(argv, (dir / log).string());
  REQUIRE(support::wait_for_port(s.port, std::chrono::seconds(10)));
  return s;
}

// The fixture's config plus an SMS gateway (kannel kind unless `gateway` says otherwise).
inline fs::path write_sms_config(const temp_dir& dir, const redis_server& redis, const std::string& url,
                                 const std::string& gateway = "", const std::string& extra_engine = "") {
  auto path = write_config(dir, redis, 1, extra_engine);
  std::ofstream out(path, std::ios::app);
  out << "sms:\n  default_region: NO\n  gateway:\n    url: " << url << "\n    from: Forbundet\n"
      << (gateway.empty() ? "    kind: kannel\n" : gateway);
  return path;
}

// The sink's store: number -> messages that arrived for it.
inline std::map<std::string, int> sms_arrivals(const temp_dir& dir, std::vector<boost::json::object>* lines = nullptr) {
  std::map<std::string, int> seen;
  std::ifstream in(dir / "sms.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto v = boost::json::parse(line).as_object();
    ++seen[std::string(v.at("to").as_string())];
    if (lines) lines->push_back(std::move(v));
  }
  return seen;
}

// The sink's count of requests that arrived during a back-off window it announced, on any
// connection, more than 50 ms after the 429. It also counts requests that were already on their
// way when the 429 left, so it is exact only while the engine answers within those 50 ms: an
// engine under ThreadSanitizer (deploy/dev.sh test --tsan) runs many times slower and is not held
// to it. The exact count is "in_backoff_same_connection" (on HTTP/1.1, such a request was surely
// sent after the 429 had arrived).
inline bool slow_engine() {
  const char* s = std::getenv("BUDSTIKKE_SANITIZED");
  return s != nullptr && std::string_view(s) == "thread";
}

// A count from the sink's exit line, after it has been stopped.
inline long long sms_sink_count(const temp_dir& dir, const std::string& name) {
  auto log = slurp(dir / "sms-sink.log");
  std::smatch m;
  if (!std::regex_search(log, m, std::regex(" " + name + "=([0-9]+)"))) return -1;
  return std::stoll(m[1]);
}

inline void enqueue_sms(const temp_dir& dir, const fs::path& config, const std::string& id, const fs::path& members,
                        const std::string& category = "tariff", const std::string& template_dir = "") {
  auto tpl = template_dir;
  if (tpl.empty()) {
    fs::create_directories(dir / "sms-template");
    std::ofstream(dir / "sms-template" / "sms.mustache")
        << "Hei {{name}}! Kontingenten for {{branch}} er ikke betalt. Logg inn på Min side.\n";
    tpl = (dir / "sms-template").string();
  }
  auto enq = run_cli(dir, {"enqueue", "--config", config.string(), "--campaign", id, "--channel", "sms",
                           "--category", category, "--template", tpl, "--recipients", members.string()});
  INFO(enq.output);
  REQUIRE(enq.code == 0);
}

inline std::string run_until_idle(const temp_dir& dir, const fs::path& config,
                                  std::chrono::seconds limit = std::chrono::seconds(300)) {
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, limit);
  INFO(run.output);
  REQUIRE(run.code == 0);
  return run.output;
}

// n members with Norwegian mobile numbers written the ways members type them.
inline fs::path write_sms_members(const temp_dir& dir, int n, const std::map<int, std::string>& replace_to = {}) {
  auto path = dir / "sms-members.jsonl";
  std::ofstream out(path);
  for (int i = 0; i < n; ++i) {
    std::string digits = std::to_string(90000000 + i);
    std::string to = i % 3 == 0 ? digits : i % 3 == 1 ? "+47 " + digits : digits.substr(0, 3) + " " + digits.substr(3, 2) + " " + digits.substr(5);
    if (auto it = replace_to.find(i); it != replace_to.end()) to = it->second;
    out << "{\"to\":\"" << to << "\",\"id\":\"M" << i << "\",\"name\":\"Åse " << i << "\",\"branch\":\"Tromsø\"}\n";
  }
  return path;
}

}  // namespace budstikke::testing
