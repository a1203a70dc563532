// The portal examples (examples/python, examples/node, examples/php) against a real Redis: each
// records consent and enqueues a campaign, the engine sends it, and exactly the members with
// consent get their message. A missing interpreter or client library skips that example, saying so.
#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;

namespace {

// True when `argv` runs and exits 0 (an interpreter with its Redis client).
bool runs(const std::vector<std::string>& argv) {
  try {
    auto probe = budstikke::support::child_process::spawn(argv, "/dev/null");
    auto st = probe.wait_for(std::chrono::seconds(30));
    return st && st->exited_normally();
  } catch (const std::exception&) {
    return false;
  }
}

void check_example(const std::string& name, const std::vector<std::string>& interpreter) {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  // The built-in consent rules: newsletters need a recorded grant.
  auto config = dir / "portal.yaml";
  std::ofstream(config) << "redis:\n  url: " << redis.url() << "\nengine:\n  workers: 1\n  admin_listen: \"\"\n"
                        << "smtp:\n  host: 127.0.0.1\n  port: " << sink.port << "\n";

  auto script = source_dir() + "/examples/" + name;
  std::vector<std::string> argv = interpreter;
  argv.insert(argv.end(), {script, "--redis", redis.url(), "--campaign", "portal-example", "--members",
                           source_dir() + "/examples/members.jsonl"});
  auto log = dir / "example.log";
  auto example = budstikke::support::child_process::spawn(argv, log.string());
  auto st = example.wait_for(std::chrono::seconds(60));
  INFO(slurp(log));
  REQUIRE(st);
  REQUIRE(st->exited_normally());
  CHECK(slurp(log).find("enqueued campaign portal-example: 5 recipients") != std::string::npos);

  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"});
  INFO(run.output);
  REQUIRE(run.code == 0);
  auto s = campaign_status(dir, config, "portal-example");
  require_adds_up(s, 5);
  CHECK(field(s, "sent") == 3);
  CHECK(field(s, "skipped") == 2);  // M1003 withdrew, M1004 never granted
  CHECK(s.at("category").as_string() == "newsletter");

  auto seen = arrivals(maildir);
  CHECK(seen == std::map<std::string, int>{{"kari.nordmann@avd-nord.example", 1},
                                           {"ola.odegard@avd-nord.example", 1},
                                           {"jorgen.ostby@avd-nord.example", 1}});
  // The example's templates and data arrived.
  std::string mail;
  for (const auto& f : fs::directory_iterator(maildir / "new")) mail += slurp(f.path());
  CHECK(mail.find("Subject: =?utf-8?") != std::string::npos);
  CHECK(mail.find("Ola =C3=98deg=C3=A5rd") != std::string::npos);
}

}  // namespace

TEST_CASE("e2e: the Python portal example records consent and enqueues what the engine sends") {
  if (!runs({"/usr/bin/python3", "-c", "import redis"})) {
    WARN("skipped: /usr/bin/python3 with redis-py is missing (Debian package python3-redis)");
    return;
  }
  check_example("python/enqueue.py", {"/usr/bin/python3"});
}

TEST_CASE("e2e: the Node portal example records consent and enqueues what the engine sends") {
  if (!runs({"node", "-e", "require('" + source_dir() + "/examples/node/node_modules/ioredis')"})) {
    WARN("skipped: node or ioredis is missing (install Debian's nodejs and npm, then: cd examples/node && npm ci)");
    return;
  }
  check_example("node/enqueue.js", {"node"});
}

TEST_CASE("e2e: the PHP portal example records consent and enqueues what the engine sends") {
  if (!runs({"php", "-r", "exit(extension_loaded('redis') ? 0 : 1);"})) {
    WARN("skipped: php with phpredis is missing (Debian packages php-cli php-redis)");
    return;
  }
  check_example("php/enqueue.php", {"php"});
}
