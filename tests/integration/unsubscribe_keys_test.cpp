// The keys of unsubscribe tokens, end to end: a secret too short to be safe stops the CLI with
// exit code 2 and the reason, whether or not List-Unsubscribe is configured.
#include <cstdlib>

#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;

namespace {

fs::path write_file(const temp_dir& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir / name) << text;
  return dir / name;
}

}  // namespace

TEST_CASE("e2e: an unsubscribe secret shorter than 16 bytes stops the CLI with exit code 2, URL or not") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto sink = start_own_sink(dir);
  // No unsubscribe_url: the admin port would still apply tokens signed with this secret.
  write_file(dir, "short-secret", "0123456789\n");
  auto config = write_config(dir, redis, sink.port);
  std::ofstream(config, std::ios::app) << "email:\n  unsubscribe_secret_file: " << (dir / "short-secret").string() << "\n";
  auto r = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, std::chrono::seconds(30));
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(r.output.find("email.unsubscribe_secret_file '" + (dir / "short-secret").string() +
                      "': the unsubscribe secret is shorter than 16 bytes") != std::string::npos);

  // From the environment, without a configuration file.
  ::setenv("BUDSTIKKE_UNSUBSCRIBE_SECRET", "0123456789", 1);
  r = run_cli(dir, {"consent", "withdraw", "--redis", redis.url(), "--token", "x.y"}, std::chrono::seconds(30));
  ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRET");
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(r.output.find("error: BUDSTIKKE_UNSUBSCRIBE_SECRET: the unsubscribe secret is shorter than 16 bytes") !=
        std::string::npos);
  CHECK(r.output.find("0123456789") == std::string::npos);
}
