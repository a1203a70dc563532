// A password in a Redis URL never reaches the output: not when the server cannot be reached, not
// when the URL is malformed, whether it comes from BUDSTIKKE_REDIS or --redis.
#include <cstdlib>

#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;

namespace {

const std::string password = "Hemmelig-Pa55ord-4e1b";

// `budstikke status` with BUDSTIKKE_REDIS set to `url` (the child inherits the environment).
cli_result status_with_environment(const temp_dir& dir, const std::string& url) {
  ::setenv("BUDSTIKKE_REDIS", url.c_str(), 1);
  auto r = run_cli(dir, {"status"}, std::chrono::seconds(60));
  ::unsetenv("BUDSTIKKE_REDIS");
  return r;
}

}  // namespace

TEST_CASE("credentials: an unreachable or malformed Redis URL's password is not in the output") {
  temp_dir dir;
  const auto closed = std::to_string(budstikke::support::free_loopback_port());  // nothing listens there

  for (const std::string scheme : {"rediss", "redis"}) {
    INFO(scheme);
    auto r = status_with_environment(dir, scheme + "://budstikke:" + password + "@127.0.0.1:" + closed + "/0");
    INFO(r.output);
    CHECK(r.code == 1);
    CHECK(r.output.find("Redis at 127.0.0.1:" + closed + "/0") != std::string::npos);
    CHECK(r.output.find(password) == std::string::npos);
  }

  for (const std::string& url : {"redis//budstikke:" + password + "@127.0.0.1:1", "rediss:/:" + password + "@127.0.0.1:1",
                                "http://:" + password + "@127.0.0.1:1"}) {
    INFO(url);
    auto env = status_with_environment(dir, url);
    INFO(env.output);
    CHECK(env.code == 2);
    CHECK(env.output.find("BUDSTIKKE_REDIS") != std::string::npos);
    CHECK(env.output.find("***@127.0.0.1:1") != std::string::npos);
    CHECK(env.output.find(password) == std::string::npos);

    auto flag = run_cli(dir, {"status", "--redis", url});
    INFO(flag.output);
    CHECK(flag.code == 2);
    CHECK(flag.output.find("--redis") != std::string::npos);
    CHECK(flag.output.find(password) == std::string::npos);
  }
}
