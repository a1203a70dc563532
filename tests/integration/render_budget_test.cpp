// A member whose data makes a template blow the render budget (a partial that includes itself
// twice, guarded by the member's own data): the cut-off message is not sent but recorded
// `failed` with the reason; the others are sent, and the counts add up.
#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;

TEST_CASE("e2e: a render over the render budget is failed with the reason, never sent truncated") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  auto config = write_config(dir, redis, sink.port);

  auto set = dir / "templates" / "budget";
  fs::create_directories(set / "partials");
  std::ofstream(set / "subject.mustache") << "Hei {{name}}\n";
  std::ofstream(set / "text.mustache") << "Hei {{name}}\n{{#deep}}{{>twice}}{{/deep}}\n";
  std::ofstream(set / "partials" / "twice.mustache") << "{{#deep}}{{>twice}}{{>twice}}{{/deep}}x";
  constexpr int n = 4;
  auto members = dir / "members.jsonl";
  {
    std::ofstream out(members);
    for (int i = 0; i < n; ++i)
      out << R"({"to":"m)" << i << R"(@avd1.example","id":"M)" << i << R"(","name":"Åse")"
          << (i == 2 ? R"(,"deep":true)" : "") << "}\n";
  }
  auto enq = run_cli(dir, {"enqueue", "--config", config.string(), "--campaign", "budget", "--template", set.string(),
                           "--recipients", members.string(), "--from", "nyheter@forbundet.example"});
  INFO(enq.output);
  REQUIRE(enq.code == 0);

  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"});
  INFO(run.output);
  REQUIRE(run.code == 0);
  auto s = campaign_status(dir, config, "budget");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n - 1);
  CHECK(field(s, "failed") == 1);
  auto reasons = outcome_reasons(redis, "budget");
  REQUIRE(reasons.count("M2") == 1);
  CHECK(reasons["M2"].rfind("render budget exceeded in template text", 0) == 0);
  CHECK(reasons["M2"].find("incomplete") != std::string::npos);

  auto seen = arrivals(maildir);
  CHECK(seen.size() == static_cast<std::size_t>(n - 1));
  CHECK(seen.count("m2@avd1.example") == 0);
}
