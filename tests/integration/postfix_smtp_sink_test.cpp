// The same path against a server the project did not write: Postfix's smtp-sink.
#include <unistd.h>

#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;

TEST_CASE("e2e: a campaign through Postfix's smtp-sink arrives exactly once") {
  if (::access("/usr/sbin/smtp-sink", X_OK) != 0) {
    WARN("SKIPPED: /usr/sbin/smtp-sink is missing (deploy/dev.sh test --with-postfix installs Debian's postfix)");
    return;
  }
  temp_dir dir;
  auto redis = start_redis(dir);
  auto port = budstikke::support::free_loopback_port();
  auto dump = dir / "dump";
  std::vector<std::string> argv{"/usr/sbin/smtp-sink"};
  if (::geteuid() == 0) argv.insert(argv.end(), {"-u", "nobody"});
  // smtp-sink drops to `nobody` when started as root: it must reach its dump directory.
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  fs::create_directories(dump);
  fs::permissions(dump, fs::perms::all);
  argv.insert(argv.end(), {"-D", (dump / "all").string(), "127.0.0.1:" + std::to_string(port), "256"});
  auto sink = budstikke::support::child_process::spawn(argv, (dir / "smtp-sink.log").string());
  REQUIRE(budstikke::support::wait_for_port(port, std::chrono::seconds(10)));

  auto config = write_config(dir, redis, port);
  constexpr int n = 3000;
  auto members = write_members(dir, n);
  enqueue_newsletter(dir, config, "pf", members);
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, std::chrono::seconds(300));
  INFO(run.output);
  REQUIRE(run.code == 0);
  auto s = campaign_status(dir, config, "pf");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n);
  sink.stop();

  // smtp-sink's dump has one X-Rcpt-Args line per recipient of each transaction.
  std::map<std::string, int> seen;
  std::ifstream in(dump / "all");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("X-Rcpt-Args: ", 0) != 0) continue;
    auto addr = line.substr(13);
    if (!addr.empty() && addr.back() == '\r') addr.pop_back();
    if (addr.size() > 2 && addr.front() == '<') addr = addr.substr(1, addr.find('>') - 1);
    ++seen[addr];
  }
  require_each_once(seen, n);
}
