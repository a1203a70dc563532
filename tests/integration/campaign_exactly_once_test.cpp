// A 20,000-recipient campaign through redis-server and the project's SMTP sink: every recipient
// gets exactly one message, and `status --json` adds up.
#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;

TEST_CASE("e2e: 20,000 recipients arrive exactly once and the counts add up") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  auto config = write_config(dir, redis, sink.port);
  constexpr int n = 20000;
  auto members = write_members(dir, n);

  auto enq = run_cli(dir, {"enqueue", "--config", config.string(), "--campaign", "tariff-2026", "--template",
                           source_dir() + "/deploy/templates/newsletter", "--recipients", members.string(),
                           "--from", "nyheter@forbundet.example", "--from-name", "Forbundet Øst"});
  INFO(enq.output);
  REQUIRE(enq.code == 0);

  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, std::chrono::seconds(300));
  INFO(run.output);
  REQUIRE(run.code == 0);
  // Logs never carry recipient addresses.
  CHECK(run.output.find("@avd") == std::string::npos);

  auto s = campaign_status(dir, config, "tariff-2026");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n);

  auto seen = arrivals(maildir);
  CHECK(seen.size() == static_cast<std::size_t>(n));
  int duplicates = 0, missing = 0;
  for (int i = 0; i < n; ++i) {
    auto it = seen.find("medlem" + std::to_string(i) + "@avd" + std::to_string(i % 7) + ".example");
    if (it == seen.end()) ++missing;
    else if (it->second != 1) ++duplicates;
  }
  CHECK(missing == 0);
  CHECK(duplicates == 0);

  // A stored message is a well-formed MIME message carrying the campaign id.
  auto first = fs::directory_iterator(maildir / "new")->path();
  auto message = slurp(first);
  CHECK(message.find("X-Budstikke-Campaign: tariff-2026\r\n") != std::string::npos);
  CHECK(message.find("MIME-Version: 1.0\r\n") != std::string::npos);
  CHECK(message.find("multipart/alternative") != std::string::npos);
}
