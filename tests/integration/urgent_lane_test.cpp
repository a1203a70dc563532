// Fairness: an urgent campaign (priority 9) enqueued while a big newsletter keeps every slot of a
// slow relay busy is read at once, jumps the queue to the wire, and finishes while the newsletter
// has barely moved; two tenants sending at once share the reads by their weights.
#include <csignal>
#include <thread>

#include "tests/integration/sms.hpp"

using namespace budstikke::testing;

namespace {

std::int64_t sent_now(const temp_dir& dir, const fs::path& config, const std::string& id) {
  return field(campaign_status(dir, config, id), "sent");
}

fs::path write_email_and_sms_config(const temp_dir& dir, const redis_server& redis, std::uint16_t smtp_port,
                                    std::uint16_t sms_port, const std::string& extra_engine = "") {
  auto path = write_config(dir, redis, smtp_port, extra_engine);
  std::ofstream(path, std::ios::app) << "sms:\n  default_region: NO\n  gateway:\n    kind: kannel\n    url: http://127.0.0.1:"
                                     << sms_port << "/cgi-bin/sendsms\n    from: Forbundet\n";
  return path;
}

}  // namespace

TEST_CASE("e2e: an urgent 200-recipient SMS enqueued during a big newsletter finishes while the newsletter has barely moved") {
  temp_dir dir;
  auto redis = start_redis(dir);
  // A slow relay: every reply takes 50 ms, so the newsletter fills the window and waits for the wire.
  auto smtp = start_own_sink(dir, {"--reply-delay-ms", "50"});
  auto sms = start_sms_sink(dir);
  auto config = write_email_and_sms_config(dir, redis, smtp.port, sms.port);
  constexpr int newsletter = 20000, urgent = 200;
  enqueue_newsletter(dir, config, "nyhetsbrev", write_members(dir, newsletter), {"--tenant", "forbundet"});
  auto engine = budstikke::support::child_process::spawn({budstikke_bin(), "run", "--config", config.string()},
                                                         (dir / "engine.log").string());
  for (int i = 0; i < 1000 && sent_now(dir, config, "nyhetsbrev") < 100; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));

  auto sms_members = write_sms_members(dir, urgent);
  fs::create_directories(dir / "urgent");
  std::ofstream(dir / "urgent" / "sms.mustache") << "Hei {{name}}! Streiken starter i morgen kl. 06. Møt opp ved porten.\n";
  auto enq = run_cli(dir, {"enqueue", "--config", config.string(), "--campaign", "streikevarsel", "--channel", "sms",
                           "--category", "tariff", "--priority", "9", "--template", (dir / "urgent").string(),
                           "--recipients", sms_members.string()});
  INFO(enq.output);
  REQUIRE(enq.code == 0);
  const auto enqueued_at = std::chrono::steady_clock::now();
  const auto newsletter_then = sent_now(dir, config, "nyhetsbrev");

  boost::json::object s;
  for (int i = 0; i < 1500; ++i) {
    s = campaign_status(dir, config, "streikevarsel");
    if (s.at("state").as_string() == "done") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - enqueued_at).count();
  const auto newsletter_moved = sent_now(dir, config, "nyhetsbrev") - newsletter_then;
  WARN("urgent SMS campaign done " << seconds << " s after it was enqueued; the newsletter sent " << newsletter_moved
                                   << " meanwhile");
  INFO(boost::json::serialize(s));
  require_adds_up(s, urgent);
  CHECK(field(s, "sent") == urgent);
  if (field(s, "sent") != urgent)
    for (auto& [member, reason] : outcome_reasons(redis, "streikevarsel")) WARN(member << ": " << reason);
  // Behind the newsletter's read-ahead (two shards x 500 slots, waiting for a relay that takes
  // about 100 messages a second) it would have waited for about a thousand of them. Alone it is
  // done in about a second (~150 of them); a sanitized engine sharing two cores with another
  // scenario took 3.8 s (550), still well short of the read-ahead.
  CHECK(newsletter_moved < 700);
  CHECK(field(campaign_status(dir, config, "nyhetsbrev"), "pending") > 0);

  REQUIRE(run_cli(dir, {"cancel", "--config", config.string(), "--campaign", "nyhetsbrev"}).code == 0);
  engine.signal(SIGTERM);
  auto exit = engine.wait_for(std::chrono::seconds(30));
  REQUIRE(exit);
  CHECK(exit->code == 0);
}

TEST_CASE("e2e: two tenants sending at once share the relay by their weights, not by campaign size") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto smtp = start_own_sink(dir, {"--reply-delay-ms", "20"});
  // One shard, so the shares are those of one scheduler; oslo weighs 3, bergen 1.
  auto config = write_config(dir, redis, smtp.port, "  tenant_weights: {oslo: 3, bergen: 1}\n");
  {
    // workers: 1 (the fixture says 2; a later key would be a duplicate)
    auto text = slurp(config);
    text.replace(text.find("workers: 2"), 10, "workers: 1");
    std::ofstream(config) << text;
  }
  constexpr int n = 6000;
  auto members = write_members(dir, n);
  // bergen sends two campaigns, oslo one: per tenant, not per campaign, oslo still gets 3 of 4 reads.
  enqueue_newsletter(dir, config, "bergen-1", members, {"--tenant", "bergen"});
  enqueue_newsletter(dir, config, "bergen-2", members, {"--tenant", "bergen"});
  enqueue_newsletter(dir, config, "oslo-1", members, {"--tenant", "oslo"});
  auto engine = budstikke::support::child_process::spawn({budstikke_bin(), "run", "--config", config.string()},
                                                         (dir / "engine.log").string());
  std::int64_t oslo = 0, bergen = 0;
  for (int i = 0; i < 1500 && oslo + bergen < 3000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    oslo = sent_now(dir, config, "oslo-1");
    bergen = sent_now(dir, config, "bergen-1") + sent_now(dir, config, "bergen-2");
  }
  WARN("sent: oslo " << oslo << ", bergen " << bergen << " (two campaigns)");
  REQUIRE(oslo + bergen >= 3000);
  const double share = static_cast<double>(oslo) / static_cast<double>(oslo + bergen);
  CHECK(share > 0.65);
  CHECK(share < 0.85);
  for (auto id : {"oslo-1", "bergen-1", "bergen-2"}) REQUIRE(run_cli(dir, {"cancel", "--config", config.string(), "--campaign", id}).code == 0);
  engine.signal(SIGTERM);
  auto exit = engine.wait_for(std::chrono::seconds(30));
  REQUIRE(exit);
  CHECK(exit->code == 0);
}
