// Dead letters: a permanent refusal and exhausted attempts land in the campaign's dead-letter
// stream with the last reply; `budstikke dlq list` shows them, `dlq requeue` puts them back (once),
// and the next engine run sends them once the relay stops failing.
#include <set>
#include <sstream>

#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;
namespace queue = budstikke::queue;

TEST_CASE("e2e dlq: failed recipients become dead letters, and requeue sends them after the relay recovers") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir1 = dir / "mail1";
  auto sink = start_own_sink(dir, {"--maildir", maildir1.string(), "--transient-share", "1",
                                   "--reject-rcpt-containing", "@avd3.", "--seed", "4"});
  auto config = write_config(dir, redis, sink.port, "  max_attempts: 2\n  retry_poll_ms: 20\n");
  constexpr int n = 40;
  constexpr int rejected = 6;  // i % 7 == 3 for i < 40: 3, 10, 17, 24, 31, 38
  auto members = write_members(dir, n);
  enqueue_newsletter(dir, config, "dl", members);
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, std::chrono::seconds(60));
  INFO(run.output);
  REQUIRE(run.code == 0);

  auto s = campaign_status(dir, config, "dl");
  require_adds_up(s, n);
  const auto failed = field(s, "failed");
  const auto sent_first = field(s, "sent");
  CHECK(failed > rejected);  // three in four tries are 4xx: most give up after two
  CHECK(field(s, "dead_letters") == failed);

  auto dead = stream_records(redis, queue::keys().dead("dl"));
  REQUIRE(dead.size() == static_cast<std::size_t>(failed));
  int permanent = 0, exhausted = 0;
  std::set<std::string> members_dead;
  for (auto& d : dead) {
    auto& f = d.fields;
    INFO(f["member"] << " " << f["reason"]);
    CHECK(f["channel"] == "email");
    CHECK(f["to"].find("@avd") != std::string::npos);
    CHECK(f["data"].find("\"name\"") != std::string::npos);
    CHECK(f["reply"].size() > 0);
    CHECK(f["reason"].find(f["reply"]) != std::string::npos);  // the last reply, in the reason
    CHECK(f["origin"].size() > 0);
    members_dead.insert(f["member"]);
    if (f["reply"].rfind("550 ", 0) == 0) {
      ++permanent;
      CHECK(f["to"].find("@avd3.") != std::string::npos);
      CHECK(f["attempts"] == "1");
    } else {
      ++exhausted;
      CHECK(f["reply"].rfind("451 ", 0) == 0);
      CHECK(f["reason"].rfind("gave up after 2 attempts: ", 0) == 0);
      CHECK(f["attempts"] == "2");
      // An entry that gave up on its retry points back to the portal's entry.
      CHECK(f["origin"] != f["entry"]);
    }
  }
  CHECK(permanent == rejected);
  CHECK(exhausted == failed - rejected);
  CHECK(members_dead.size() == dead.size());

  auto list = run_cli(dir, {"dlq", "list", "--config", config.string(), "--json", "--limit", "0"});
  REQUIRE(list.code == 0);
  std::istringstream lines(list.output);
  std::string line;
  int listed = 0;
  while (std::getline(lines, line)) {
    auto v = boost::json::parse(line).as_object();
    CHECK(v.at("campaign").as_string() == "dl");
    CHECK(members_dead.count(std::string(v.at("member").as_string())) == 1);
    CHECK_FALSE(v.contains("to"));  // listings name members, not addresses
    ++listed;
  }
  CHECK(listed == failed);
  auto list550 = run_cli(dir, {"dlq", "list", "--config", config.string(), "--reason", "550 5.1.1", "--json"});
  CHECK(std::count(list550.output.begin(), list550.output.end(), '\n') == rejected);
  auto limited = run_cli(dir, {"dlq", "list", "--config", config.string(), "--limit", "2", "--json"});
  CHECK(std::count(limited.output.begin(), limited.output.end(), '\n') == 2);
  auto shown = run_cli(dir, {"dlq", "show", "--config", config.string(), "--campaign", "dl", dead.front().id});
  CHECK(shown.code == 0);
  CHECK(shown.output.find("to: " + dead.front().fields["to"]) != std::string::npos);
  CHECK(run_cli(dir, {"dlq", "show", "--config", config.string(), "--campaign", "dl", "1-1"}).code == 2);
  CHECK(run_cli(dir, {"dlq", "requeue", "--config", config.string(), "--campaign", "nope"}).code == 2);
  CHECK(run_cli(dir, {"dlq", "requeue", "--config", config.string()}).code == 2);

  // The relay recovers.
  sink.process.stop();
  auto maildir2 = dir / "mail2";
  auto healthy = start_own_sink(dir, {"--maildir", maildir2.string()});
  config = write_config(dir, redis, healthy.port, "  retry_poll_ms: 20\n");

  auto again = run_cli(dir, {"dlq", "requeue", "--config", config.string(), "--campaign", "dl", "--reason", "gave up"});
  INFO(again.output);
  REQUIRE(again.code == 0);
  CHECK(again.output.find("requeued " + std::to_string(exhausted) + " dead letters") != std::string::npos);
  // Requeued once: the same call again finds nothing.
  auto twice = run_cli(dir, {"dlq", "requeue", "--config", config.string(), "--campaign", "dl", "--reason", "gave up"});
  CHECK(twice.output.find("requeued 0 dead letters") != std::string::npos);
  s = campaign_status(dir, config, "dl");
  CHECK(s.at("state").as_string() == "active");
  CHECK(field(s, "failed") == rejected);
  CHECK(field(s, "pending") == exhausted);
  CHECK(redis_integer(redis, {"ZSCORE", queue::keys().registry(), "dl"}) == 5);
  auto rest = run_cli(dir, {"dlq", "requeue", "--config", config.string(), "--campaign", "dl"});
  CHECK(rest.output.find("requeued " + std::to_string(rejected) + " dead letters") != std::string::npos);

  run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, std::chrono::seconds(60));
  REQUIRE(run.code == 0);
  s = campaign_status(dir, config, "dl");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n);
  CHECK(field(s, "failed") == 0);
  CHECK(field(s, "dead_letters") == 0);
  CHECK(field(s, "enqueued") == n);
  auto first = arrivals(maildir1), second = arrivals(maildir2);
  CHECK(static_cast<std::int64_t>(first.size()) == sent_first);
  CHECK(static_cast<std::int64_t>(second.size()) == failed);
  for (auto& [addr, count] : second) {
    CHECK(count == 1);
    CHECK(first.count(addr) == 0);
  }
  auto none = run_cli(dir, {"dlq", "list", "--config", config.string()});
  CHECK(none.output.find("no dead letters") != std::string::npos);
}
