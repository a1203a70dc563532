// Redis as run by someone else: the `default` user has a password the engine never sees, and the
// engine is an ACL user with exactly the rights docs/operations.md gives it (the test reads that
// ACL SETUSER line from the document). Every command the engine and the CLI send, and every
// command their scripts call, goes through: the campaign ends with exact counts and Redis's
// ACL LOG holds no denial.
#include <sstream>

#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;
namespace queue = budstikke::queue;

namespace {

const std::string admin_password = "admin-only-7f3e";
const std::string engine_password = "engine-acl-91c2";

// One command as the `default` user (the administrator): its reply.
queue::reply_ptr as_admin(const redis_server& redis, const std::vector<std::string>& args) {
  queue::reply_ptr out;
  boost::asio::io_context ioc;
  queue::redis_config rc;
  rc.port = redis.port;
  rc.password = admin_password;
  boost::asio::co_spawn(
      ioc,
      [&]() -> boost::asio::awaitable<void> {
        queue::connection conn(co_await boost::asio::this_coro::executor, rc);
        queue::request req;
        req.begin(args.size());
        for (const auto& a : args) req.arg(a);
        std::vector<queue::reply_ptr> replies;
        auto ec = co_await conn.async_exec(req, replies);
        if (!ec) out = std::move(replies[0]);
      },
      boost::asio::detached);
  ioc.run();
  REQUIRE(out);
  return out;
}

// The words of the `ACL SETUSER budstikke ...` line in docs/operations.md, with the password set.
std::vector<std::string> documented_acl() {
  std::istringstream doc(slurp(fs::path(source_dir()) / "docs/operations.md"));
  std::string line;
  while (std::getline(doc, line)) {
    if (!line.starts_with("ACL SETUSER budstikke ")) continue;
    std::vector<std::string> words;
    std::istringstream in(line);
    for (std::string w; in >> w;) words.push_back(w == ">PASSWORD" ? ">" + engine_password : w);
    return words;
  }
  FAIL("docs/operations.md has no ACL SETUSER budstikke line");
  return {};
}

}  // namespace

TEST_CASE("redis acl: the documented ACL user runs enqueue, control, consent, the engine, status, dlq, send and suppress") {
  temp_dir dir;
  auto redis = start_redis(dir, {"--requirepass", admin_password});
  auto acl = documented_acl();
  CHECK(std::find(acl.begin(), acl.end(), "~budstikke:*") != acl.end());
  auto set = as_admin(redis, acl);
  INFO(queue::as_string(set.get()));
  REQUIRE(queue::as_string(set.get()) == "OK");

  auto maildir = dir / "mail";
  // Deterministic outcomes: avd3 refused (5xx), avd5 deferred every time (4xx: one retry, then a
  // dead letter at max_attempts 2), M1 withdraws consent.
  auto sink = start_own_sink(dir, {"--maildir", maildir.string(), "--reject-rcpt-containing", "@avd3.",
                                   "--defer-rcpt-containing", "@avd5."});
  auto config = write_config(dir, redis, sink.port, "  max_attempts: 2\n  retry_poll_ms: 20\n");
  {
    auto text = slurp(config);
    const std::string plain = "redis://127.0.0.1:";
    text.replace(text.find(plain), plain.size(), "redis://budstikke:" + engine_password + "@127.0.0.1:");
    std::ofstream(config) << text << "limits:\n  global: 100000\n";  // take_tokens
  }
  constexpr int n = 140;  // 20 each at avd3 and avd5
  enqueue_newsletter(dir, config, "acl", write_members(dir, n));
  for (const char* step : {"pause", "resume"}) {
    auto r = run_cli(dir, {step, "--config", config.string(), "--campaign", "acl"});
    INFO(r.output);
    REQUIRE(r.code == 0);
  }
  auto withdraw = run_cli(dir, {"consent", "withdraw", "--config", config.string(), "--member", "M1", "--channel",
                                "email", "--category", "newsletter"});
  INFO(withdraw.output);
  REQUIRE(withdraw.code == 0);
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"});
  INFO(run.output);
  REQUIRE(run.code == 0);

  auto s = campaign_status(dir, config, "acl");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n - 41);
  CHECK(field(s, "failed") == 40);
  CHECK(field(s, "skipped") == 1);
  CHECK(field(s, "ambiguous") == 0);
  require_each_once(arrivals(maildir), n - 41);

  auto list = run_cli(dir, {"dlq", "list", "--config", config.string(), "--campaign", "acl", "--json"});
  INFO(list.output);
  REQUIRE(list.code == 0);
  auto requeue = run_cli(dir, {"dlq", "requeue", "--config", config.string(), "--campaign", "acl"});
  INFO(requeue.output);
  REQUIRE(requeue.code == 0);
  CHECK(requeue.output.find("requeued 40 dead letters") != std::string::npos);

  // The operator's commands: one message by hand, consent and the suppression list.
  for (std::vector<std::string> args : {
           std::vector<std::string>{"send", "--channel", "email", "--to", "hand@avd1.example", "--member", "M2",
                                    "--category", "tariff", "--subject", "s", "--text", "t", "--from",
                                    "Forbundet <post@forbundet.example>"},
           std::vector<std::string>{"consent", "grant", "--member", "M2", "--channel", "sms", "--category", "*",
                                    "--source", "acl test"},
           std::vector<std::string>{"consent", "show", "--member", "M2", "--email", "hand@avd1.example"},
           std::vector<std::string>{"suppress", "add", "--channel", "email", "--address", "hand@avd1.example",
                                    "--reason", "test"},
           std::vector<std::string>{"suppress", "list", "--channel", "email"},
           std::vector<std::string>{"suppress", "remove", "--channel", "email", "--address", "hand@avd1.example"}}) {
    args.insert(args.end(), {"--config", config.string()});
    auto r = run_cli(dir, args);
    INFO(r.output);
    CHECK(r.code == 0);
  }

  // Nothing was refused along the way, not even a SCRIPT LOAD the engine would have done without.
  auto log = as_admin(redis, {"ACL", "LOG"});
  std::string denials;
  for (std::size_t i = 0; i < log->elements; ++i) {
    const auto* entry = log->element[i];
    for (std::size_t k = 0; k + 1 < entry->elements; k += 2) {
      auto name = queue::as_string(entry->element[k]);
      if (name == "reason" || name == "object" || name == "context")
        denials += std::string(name) + "=" + std::string(queue::as_string(entry->element[k + 1])) + " ";
    }
    denials += "\n";
  }
  INFO("ACL LOG: " << denials);
  CHECK(log->elements == 0);
}
