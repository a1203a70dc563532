// `status --watch` while an engine sends: plain key=value lines when stdout is not a terminal,
// progress up to done, and an exit of its own with --until-idle.
#include <regex>
#include <sstream>

#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;

TEST_CASE("e2e: status --watch follows a campaign to done in plain lines and exits with --until-idle") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto sink = start_own_sink(dir, {"--reply-delay-ms", "2"});
  auto config = write_config(dir, redis, sink.port);
  constexpr int n = 3000;
  auto members = write_members(dir, n);
  enqueue_newsletter(dir, config, "watched", members);

  auto watch_log = dir / "watch.log";
  auto watch = budstikke::support::child_process::spawn(
      {budstikke_bin(), "status", "--config", config.string(), "--watch", "--until-idle", "--interval", "0.2"},
      watch_log.string());
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, std::chrono::seconds(300));
  INFO(run.output);
  REQUIRE(run.code == 0);
  auto exit = watch.wait_for(std::chrono::seconds(30));
  REQUIRE(exit);
  CHECK(exit->code == 0);

  auto text = slurp(watch_log);
  INFO(text);
  CHECK(text.find('\x1b') == std::string::npos);  // no terminal control codes in a file
  std::regex line(R"(^\S+ campaign=watched state=(active|done) done=([0-9]+) total=3000 percent=[0-9.]+ sent=[0-9]+ failed=0 skipped=0 ambiguous=0 pending=[0-9]+ rate=[0-9]+/s eta=(-|[0-9]+s)$)");
  std::istringstream in(text);
  std::string l, last;
  long long previous = -1;
  std::size_t lines = 0;
  while (std::getline(in, l)) {
    std::smatch m;
    REQUIRE(std::regex_match(l, m, line));
    CHECK(std::stoll(m[2]) >= previous);  // progress never goes back
    previous = std::stoll(m[2]);
    last = l;
    ++lines;
  }
  CHECK(lines >= 2);
  CHECK(last.find("state=done done=3000 total=3000 percent=100.0") != std::string::npos);
}

TEST_CASE("e2e: status --watch of a campaign that does not exist is a usage error") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto r = run_cli(dir, {"status", "--redis", redis.url(), "--watch", "--campaign", "nope"});
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(r.output.find("does not exist") != std::string::npos);
}
