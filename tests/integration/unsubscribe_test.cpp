// One-click unsubscribe, end to end: the token a delivered newsletter carries in its
// List-Unsubscribe header, POSTed to the engine's admin port (RFC 8058) or given to
// `budstikke consent withdraw --token`, withdraws that member's consent for the campaign's
// category; the next newsletter skips the member. GET never changes anything; a second
// application changes nothing either.
#include <regex>
#include <thread>

#include "testpeers/http_client.hpp"
#include "queue/consent.hpp"
#include "templates/unsubscribe.hpp"
#include "tests/integration/e2e.hpp"
#include "tests/integration/consent.hpp"
#include "tests/support/redis_info.hpp"

using namespace budstikke::testing;
using budstikke::support::host_port;
using budstikke::testpeers::http_request;
namespace queue = budstikke::queue;

namespace {

constexpr const char* secret = "integration-test-secret-0123456789";

fs::path config_with_unsubscribe(const temp_dir& dir, const redis_server& redis, std::uint16_t relay_port,
                                 const std::string& extra_engine = "") {
  auto path = write_config(dir, redis, relay_port, extra_engine);
  std::ofstream(dir / "unsubscribe.secret") << secret << "\n";
  std::ofstream(path, std::ios::app) << "email:\n  unsubscribe_url: https://min.forbundet.example/avmeld?t={token}\n"
                                     << "  unsubscribe_secret_file: " << (dir / "unsubscribe.secret").string() << "\n";
  return path;
}

void wait_done(const temp_dir& dir, const fs::path& config, const std::string& id, int n) {
  boost::json::object s;
  for (int i = 0; i < 300; ++i) {
    s = campaign_status(dir, config, id);
    if (s.at("state").as_string() == "done") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  require_adds_up(s, n);
}

}  // namespace

TEST_CASE("e2e: the one-click unsubscribe of a delivered newsletter, POSTed to the admin port, skips the member next time") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  auto config = config_with_unsubscribe(dir, redis, sink.port);
  constexpr int n = 6;
  auto members = write_members(dir, n);
  enqueue_newsletter(dir, config, "nyhetsbrev-mars", members);

  auto log = dir / "engine.log";
  auto engine = budstikke::support::child_process::spawn({budstikke_bin(), "run", "--config", config.string()},
                                                         log.string());
  host_port at{"127.0.0.1", admin_port_from_log(log)};
  wait_done(dir, config, "nyhetsbrev-mars", n);
  auto token = token_delivered_to(maildir, "medlem2@avd2.example");
  const std::string target = "/unsubscribe?t=" + token;

  // GET (a link scanner, a preview) changes nothing.
  auto get = http_request(at, "GET", target, {}, std::chrono::seconds(5));
  REQUIRE(get);
  CHECK(get->status == 405);
  CHECK(newsletter_consent(redis, "M2") == "(nil)");

  // A forged or damaged token is refused.
  auto forged = token;
  forged[forged.size() / 2] = forged[forged.size() / 2] == 'A' ? 'B' : 'A';
  auto bad = http_request(at, "POST", "/unsubscribe?t=" + forged, "List-Unsubscribe=One-Click", std::chrono::seconds(5));
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(newsletter_consent(redis, "M2") == "(nil)");

  // The mail client's one-click POST (RFC 8058).
  auto post = http_request(at, "POST", target, "List-Unsubscribe=One-Click", std::chrono::seconds(5));
  REQUIRE(post);
  INFO(post->body);
  CHECK(post->status == 200);
  auto first = newsletter_consent(redis, "M2");
  CHECK(first.rfind("withdrawn|", 0) == 0);
  CHECK(first.find("one-click unsubscribe (campaign nyhetsbrev-mars)") != std::string::npos);

  // Again: the same answer, and the record keeps its first time and source.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto again = http_request(at, "POST", target, "List-Unsubscribe=One-Click", std::chrono::seconds(5));
  REQUIRE(again);
  CHECK(again->status == 200);
  CHECK(newsletter_consent(redis, "M2") == first);
  // No other member was touched.
  CHECK(newsletter_consent(redis, "M3") == "(nil)");

  // The next newsletter skips M2 only.
  enqueue_newsletter(dir, config, "nyhetsbrev-april", members);
  wait_done(dir, config, "nyhetsbrev-april", n);
  auto s = campaign_status(dir, config, "nyhetsbrev-april");
  CHECK(field(s, "sent") == n - 1);
  CHECK(field(s, "skipped") == 1);
  auto reasons = outcome_reasons(redis, "nyhetsbrev-april");
  REQUIRE(reasons.count("M2") == 1);
  CHECK(reasons["M2"].find("consent withdrawn") != std::string::npos);
  engine.stop();
}

TEST_CASE("e2e: budstikke consent withdraw --token applies a token once, and refuses bad ones") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto sink = start_own_sink(dir);
  auto config = config_with_unsubscribe(dir, redis, sink.port);
  auto members = write_members(dir, 3);
  auto enq = run_cli(dir, {"enqueue", "--config", config.string(), "--campaign", "vervekampanje", "--category",
                           "winback", "--template", source_dir() + "/deploy/templates/newsletter", "--recipients",
                           members.string(), "--from", "nyheter@forbundet.example"});
  INFO(enq.output);
  REQUIRE(enq.code == 0);

  std::string token;
  budstikke::templates::make_unsubscribe_token({"0", secret}, "vervekampanje", "M1", "email", token);
  auto winback = [&] {
    std::string value = "(nil)";
    with_redis(redis, [&](queue::connection& conn) -> boost::asio::awaitable<void> {
      queue::request req;
      req.command("HGET", queue::consent_key(queue::keys(), "M1"), "email:winback");
      std::vector<queue::reply_ptr> replies;
      auto ec = co_await conn.async_exec(req, replies);
      REQUIRE_FALSE(ec);
      if (!queue::is_nil(replies[0].get())) value = queue::as_string(replies[0].get());
    });
    return value;
  };

  auto r = run_cli(dir, {"consent", "withdraw", "--config", config.string(), "--token", token});
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(r.output.find("member M1: email consent for winback withdrawn") != std::string::npos);
  auto first = winback();
  CHECK(first.rfind("withdrawn|", 0) == 0);

  r = run_cli(dir, {"consent", "withdraw", "--config", config.string(), "--token", token});
  CHECK(r.code == 0);
  CHECK(r.output.find("was already withdrawn") != std::string::npos);
  CHECK(winback() == first);

  // Signed with another secret: refused, nothing written.
  std::string foreign;
  budstikke::templates::make_unsubscribe_token({"0", "another-secret-0123456789abcdef"}, "vervekampanje", "M0", "email", foreign);
  r = run_cli(dir, {"consent", "withdraw", "--config", config.string(), "--token", foreign});
  CHECK(r.code == 2);
  CHECK(r.output.find("invalid token") != std::string::npos);

  // A campaign that is gone: its category is unknown, so nothing is guessed.
  std::string orphan;
  budstikke::templates::make_unsubscribe_token({"0", secret}, "slettet-kampanje", "M0", "email", orphan);
  r = run_cli(dir, {"consent", "withdraw", "--config", config.string(), "--token", orphan});
  CHECK(r.code == 2);
  CHECK(r.output.find("unknown campaign") != std::string::npos);

  // By hand, without a token.
  r = run_cli(dir, {"consent", "withdraw", "--config", config.string(), "--member", "M0", "--channel", "sms",
                    "--category", "*"});
  CHECK(r.code == 0);
  CHECK(r.output.find("member M0: sms consent for every category withdrawn") != std::string::npos);
  r = run_cli(dir, {"consent", "withdraw", "--config", config.string(), "--token", token, "--member", "M0"});
  CHECK(r.code == 2);
}

TEST_CASE("e2e: a flood of one-click POSTs on the public listener: two Redis connections in all, 429 beyond the per-source rate") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  auto config = config_with_unsubscribe(dir, redis, sink.port,
                                        "  unsubscribe_listen: 127.0.0.1:0\n  unsubscribe_rate_per_source: 5\n");
  constexpr int n = 3;
  auto members = write_members(dir, n);
  enqueue_newsletter(dir, config, "nyhetsbrev-mai", members);
  auto log = dir / "engine.log";
  auto engine = budstikke::support::child_process::spawn({budstikke_bin(), "run", "--config", config.string()},
                                                         log.string());
  host_port pub{"127.0.0.1", listener_port_from_log(log, "unsubscribe listening")};
  host_port adm{"127.0.0.1", admin_port_from_log(log)};
  wait_done(dir, config, "nyhetsbrev-mai", n);
  const std::string target = "/unsubscribe?t=" + token_delivered_to(maildir, "medlem1@avd1.example");

  // The public listener does not show the metrics; the admin listener no longer takes unsubscribes.
  auto metrics = http_request(pub, "GET", "/metrics", {}, std::chrono::seconds(5));
  REQUIRE(metrics);
  CHECK(metrics->status == 404);
  auto on_admin = http_request(adm, "POST", target, "List-Unsubscribe=One-Click", std::chrono::seconds(5));
  REQUIRE(on_admin);
  CHECK(on_admin->status == 404);

  const auto connections_before = info_number(redis_text(redis, {"INFO", "stats"}), "total_connections_received", "");
  int ok = 0, limited = 0, other = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 60; ++i) {
    auto r = http_request(pub, "POST", target, "List-Unsubscribe=One-Click", std::chrono::seconds(5));
    REQUIRE(r);
    if (r->status == 200) ++ok;
    else if (r->status == 429) ++limited;
    else ++other;
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto connections_after = info_number(redis_text(redis, {"INFO", "stats"}), "total_connections_received", "");
  WARN(ok << " answered 200, " << limited << " 429 in " << elapsed << " s; Redis connections opened: "
          << connections_after - connections_before);
  CHECK(other == 0);
  // A burst of 10 (twice the rate), then 5 a second.
  CHECK(ok >= 10);
  CHECK(ok <= 10 + static_cast<int>(5 * elapsed) + 1);
  CHECK(limited == 60 - ok);
  // Not one connection per request: the port's two long-lived ones (opened by the first request,
  // and the one the INFO above needed).
  CHECK(connections_after - connections_before <= 3);
  CHECK(newsletter_consent(redis, "M1").rfind("withdrawn|", 0) == 0);
  engine.stop();
}
