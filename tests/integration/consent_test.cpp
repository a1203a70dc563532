// Consent and suppression are checked when a message is about to go on the wire: grants,
// withdrawals (also written while the campaign runs) and suppressions decide, with reasons.
#include <iostream>
#include <thread>

#include "queue/consent.hpp"
#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;
namespace asio = boost::asio;
namespace q = budstikke::queue;

namespace {

// The fixture's config minus its "newsletter needs no consent" override: the real policy.
fs::path consent_config(const temp_dir& dir, const redis_server& redis, std::uint16_t port) {
  auto path = write_config(dir, redis, port);
  auto text = slurp(path);
  text = text.substr(0, text.find("categories:"));
  std::ofstream(path) << text;
  return path;
}

std::string member_address(int i) { return "medlem" + std::to_string(i) + "@avd" + std::to_string(i % 7) + ".example"; }

// In one MULTI/EXEC: every record lands at the same instant.
void write_consent(const redis_server& redis, int from, int to, bool granted, const char* source) {
  with_redis(redis, [&](q::connection& conn) -> asio::awaitable<void> {
    q::request req;
    req.command("MULTI");
    for (int i = from; i < to; ++i)
      req.command("HSET", q::consent_key(q::keys(), "M" + std::to_string(i)), "email:newsletter",
                  q::format_consent(granted, "2026-11-23T10:00:00Z", source));
    req.command("EXEC");
    std::vector<q::reply_ptr> replies;
    auto ec = co_await conn.async_exec(req, replies);
    REQUIRE_FALSE(ec);
    REQUIRE(replies.back()->type == REDIS_REPLY_ARRAY);
  });
}

}  // namespace

TEST_CASE("e2e: newsletter consent: grants send, withdrawals and missing consent skip, suppression skips") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  auto config = consent_config(dir, redis, sink.port);
  constexpr int n = 300;
  auto members = write_members(dir, n);
  write_consent(redis, 0, 200, true, "portal");     // M0..M199 granted
  write_consent(redis, 100, 150, false, "unsubscribe-link");  // M100..M149 withdrawn since
  with_redis(redis, [&](q::connection& conn) -> asio::awaitable<void> {
    q::request req;
    // A channel-wide grant covers M250; M3 is suppressed (hard bounce) although granted.
    req.command("HSET", q::consent_key(q::keys(), "M250"), "email:*", "granted|2026-01-01T00:00:00Z|portal");
    req.command("HSET", q::suppression_key(q::keys(), q::channel::email), q::suppression_member(q::channel::email, member_address(3)),
                "hard-bounce|2026-11-01T00:00:00Z");
    std::vector<q::reply_ptr> replies;
    auto ec = co_await conn.async_exec(req, replies);
    REQUIRE_FALSE(ec);
  });

  auto enq = run_cli(dir, {"enqueue", "--config", config.string(), "--campaign", "nl", "--template",
                           source_dir() + "/deploy/templates/newsletter", "--recipients", members.string(),
                           "--from", "nyheter@forbundet.example", "--category", "newsletter"});
  REQUIRE(enq.code == 0);
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"});
  INFO(run.output);
  REQUIRE(run.code == 0);

  auto s = campaign_status(dir, config, "nl");
  require_adds_up(s, n);
  // 200 granted - 50 withdrawn - 1 suppressed + 1 channel-wide grant.
  CHECK(field(s, "sent") == 150);
  CHECK(field(s, "skipped") == 150);
  auto seen = arrivals(maildir);
  CHECK(seen.size() == 150);
  CHECK(seen.count(member_address(3)) == 0);
  CHECK(seen.count(member_address(120)) == 0);
  CHECK(seen.count(member_address(250)) == 1);
  CHECK(seen.count(member_address(260)) == 0);

  // Reasons by their first two words ("no consent", "consent withdrawn", "suppressed: hard-bounce").
  std::map<std::string, int> reasons;
  for (auto& [member, reason] : outcome_reasons(redis, "nl"))
    ++reasons[reason.substr(0, reason.find(' ', reason.find(' ') + 1))];
  CHECK(reasons["no consent"] == 99);        // M200..M299 but M250
  CHECK(reasons["consent withdrawn"] == 50);
  CHECK(reasons["suppressed: hard-bounce"] == 1);
}

TEST_CASE("e2e: a withdrawal written while the campaign runs stops every message not yet on the wire") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string(), "--reply-delay-ms", "2"});
  auto config = consent_config(dir, redis, sink.port);
  constexpr int n = 4000;
  auto members = write_members(dir, n);
  write_consent(redis, 0, n, true, "portal");
  auto enq = run_cli(dir, {"enqueue", "--config", config.string(), "--campaign", "mid", "--template",
                           source_dir() + "/deploy/templates/newsletter", "--recipients", members.string(),
                           "--from", "nyheter@forbundet.example", "--category", "newsletter"});
  REQUIRE(enq.code == 0);

  auto engine = budstikke::support::child_process::spawn(
      {budstikke_bin(), "run", "--config", config.string(), "--until-idle"}, (dir / "engine.log").string());
  std::int64_t sent = 0;
  for (int i = 0; i < 500 && sent < 300; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    sent = field(campaign_status(dir, config, "mid"), "sent");
  }
  REQUIRE(sent >= 300);
  REQUIRE(sent < n / 2);  // the withdrawal lands mid-campaign (a loaded machine polls slowly)
  // Everyone from M600 on withdraws now: many of them are already read (the window is 500 per
  // shard) but not yet on the wire, so a check at read time would miss them. Two shards read in
  // batches of 256, so some members past 600 may already have been sent: count what had arrived.
  write_consent(redis, 600, n, false, "portal");
  auto count_withdrawn = [&](const std::map<std::string, int>& seen) {
    int c = 0;
    for (int i = 600; i < n; ++i) c += seen.count(member_address(i)) ? 1 : 0;
    return c;
  };
  const int arrived_before = count_withdrawn(arrivals(maildir));
  auto status = engine.wait_for(std::chrono::seconds(120));
  REQUIRE(status);
  CHECK(status->code == 0);

  auto s = campaign_status(dir, config, "mid");
  require_adds_up(s, n);
  const int arrived_after = count_withdrawn(arrivals(maildir)) - arrived_before;
  std::cout << "withdrawal mid-campaign: " << arrived_before << " withdrawn members had their message before "
            << "the withdrawal, " << arrived_after << " after it, " << field(s, "skipped") << " skipped" << std::endl;
  // After the withdrawal only messages already on the wire (marked, consent read) may arrive:
  // at most the send window, 16 per shard x 2 shards.
  CHECK(arrived_after <= 32);
  CHECK(field(s, "skipped") >= 3400 - arrived_before - 32);
  CHECK(field(s, "sent") + field(s, "skipped") == n);
}
