// `budstikke send --channel email`, `consent show|grant` and `suppress add|remove|list` against a
// real redis-server, the project's SMTP sink and aiosmtpd: one e-mail by hand is made, checked and
// recorded as a campaign's message is.
#include <regex>

#include <fmt/format.h>

#include "support/process.hpp"
#include "tests/integration/e2e.hpp"
#include "tests/support/python.hpp"

using namespace budstikke::testing;
namespace queue = budstikke::queue;

namespace {

constexpr const char* secret = "integration-test-secret-0123456789";
constexpr const char* python = debian_python;

// Consent required for newsletters (as shipped), List-Unsubscribe on, the relay at `port`.
fs::path send_config(const temp_dir& dir, const redis_server& redis, std::uint16_t port, const std::string& extra = "") {
  auto path = dir / "send.yaml";
  std::ofstream(dir / "unsubscribe.secret") << secret << "\n";
  std::ofstream(path) << "redis:\n  url: " << redis.url() << "\n"
                      << "smtp:\n  host: 127.0.0.1\n  port: " << port << "\n  connections: 1\n"
                      << "email:\n  unsubscribe_url: https://min.forbundet.example/avmeld?t={token}\n"
                      << "  unsubscribe_secret_file: " << (dir / "unsubscribe.secret").string() << "\n"
                      << extra;
  return path;
}

std::vector<std::string> send_args(const fs::path& config, const std::string& to, const std::string& member,
                                   std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"send", "--channel", "email", "--config", config.string(), "--to", to,
                                "--member", member, "--category", "newsletter",
                                "--template", source_dir() + "/deploy/templates/newsletter",
                                "--data", R"({"name":"Kari Nordmann","branch":"Tromsø"})",
                                "--from", "Fagforbundet Tromsø <nyheter@forbundet.example>"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::vector<fs::path> messages_in(const fs::path& maildir) {
  std::vector<fs::path> out;
  if (fs::exists(maildir / "new"))
    for (const auto& f : fs::directory_iterator(maildir / "new")) out.push_back(f.path());
  return out;
}

// "campaign:  ID (state; ...)" from send's output.
std::string campaign_of(const std::string& output) {
  std::smatch m;
  REQUIRE(std::regex_search(output, m, std::regex(R"(campaign:  (send-[0-9TZ]+-[0-9a-f]{6}) )")));
  return m[1];
}

// The top-level header block, unfolded, as (name, value) in order.
std::vector<std::pair<std::string, std::string>> headers_of(const std::string& message) {
  std::vector<std::pair<std::string, std::string>> out;
  auto head = message.substr(0, message.find("\r\n\r\n"));
  std::size_t at = 0;
  while (at < head.size()) {
    auto end = head.find("\r\n", at);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(at, end - at);
    if ((line[0] == ' ' || line[0] == '\t') && !out.empty()) out.back().second += line;
    else if (auto colon = line.find(':'); colon != std::string::npos)
      out.emplace_back(line.substr(0, colon), line.substr(colon + 2));
    at = end + 2;
  }
  return out;
}

std::string header(const std::vector<std::pair<std::string, std::string>>& h, const std::string& name) {
  for (const auto& [n, v] : h)
    if (n == name) return v;
  return {};
}

// `consent grant` of newsletters by e-mail to the member, as a portal would record it.
void grant(const temp_dir& dir, const fs::path& config, const std::string& member) {
  auto r = run_cli(dir, {"consent", "grant", "--config", config.string(), "--member", member, "--channel", "email",
                         "--category", "newsletter", "--source", "portal"});
  INFO(r.output);
  REQUIRE(r.code == 0);
}

}  // namespace

TEST_CASE("e2e: send --channel email goes through the relay as a campaign's message, leaves a campaign of one and an event") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string(), "--reject-rcpt-containing", "avvist"});
  auto config = send_config(dir, redis, sink.port);

  SECTION("consent missing: refused with the reason, nothing sent and nothing recorded") {
    auto r = run_cli(dir, send_args(config, "kari@avd1.example", "M1"));
    INFO(r.output);
    CHECK(r.code == 2);
    CHECK(r.output.find("not sent: no consent") != std::string::npos);
    CHECK(messages_in(maildir).empty());
    CHECK(redis_integer(redis, {"ZCARD", "budstikke:campaigns:all"}) == 0);
  }

  SECTION("granted: sent, recorded, and its unsubscribe link withdraws the consent; the next send names the withdrawal") {
    grant(dir, config, "M1");
    auto r = run_cli(dir, send_args(config, "Kari@avd1.example", "M1"));
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(r.output.find("relay:     accepted (250") != std::string::npos);
    std::smatch id;
    REQUIRE(std::regex_search(r.output, id, std::regex("message-id: (<[^>]+>)")));
    const auto campaign = campaign_of(r.output);

    auto mail = messages_in(maildir);
    REQUIRE(mail.size() == 1);
    auto text = slurp(mail[0]);
    auto h = headers_of(text);
    CHECK(header(h, "Message-ID") == id[1].str());
    CHECK(header(h, "From").find("<nyheter@forbundet.example>") != std::string::npos);
    CHECK(header(h, "From").find("=?utf-8?") != std::string::npos);  // the name, with its ø, encoded
    CHECK(header(h, "To") == "Kari Nordmann <Kari@avd1.example>");  // the data's name, as campaigns do
    CHECK(header(h, "List-Unsubscribe-Post") == "List-Unsubscribe=One-Click");
    CHECK(header(h, "X-Budstikke-Campaign") == campaign);

    // The record: a campaign of one, done, not served by any engine, and one event.
    auto s = campaign_status(dir, config, campaign);
    require_adds_up(s, 1);
    CHECK(field(s, "sent") == 1);
    CHECK(s.at("category").as_string() == "newsletter");
    CHECK(redis_integer(redis, {"ZSCORE", "budstikke:campaigns", campaign}) == -1);  // nil: not in the registry
    auto events = stream_records(redis, "budstikke:events");
    REQUIRE(events.size() == 1);
    CHECK(events[0].fields["campaign"] == campaign);
    CHECK(events[0].fields["state"] == "sent");
    CHECK(events[0].fields["member"] == "M1");

    // The List-Unsubscribe token names that campaign, which exists: the link works.
    auto token = token_delivered_to(maildir, "Kari@avd1.example");
    auto w = run_cli(dir, {"consent", "withdraw", "--config", config.string(), "--token", token});
    INFO(w.output);
    REQUIRE(w.code == 0);
    auto again = run_cli(dir, send_args(config, "kari@avd1.example", "M1"));
    INFO(again.output);
    CHECK(again.code == 2);
    CHECK(std::regex_search(again.output, std::regex(R"(not sent: consent withdrawn 20[0-9-]+T[0-9:.]+Z \(budstikke consent withdraw \(campaign )" + campaign + R"(\)\))")));
    CHECK(messages_in(maildir).size() == 1);
  }

  SECTION("the same message as a campaign of the same template and data") {
    grant(dir, config, "M1");
    auto r = run_cli(dir, send_args(config, "kari@avd1.example", "M1"));
    INFO(r.output);
    REQUIRE(r.code == 0);
    std::ofstream(dir / "one.jsonl") << R"({"to":"kari@avd1.example","id":"M1","name":"Kari Nordmann","branch":"Tromsø"})" << "\n";
    auto e = run_cli(dir, {"enqueue", "--config", config.string(), "--campaign", "nyhetsbrev-sammenlign-000001",
                           "--template", source_dir() + "/deploy/templates/newsletter", "--recipients",
                           (dir / "one.jsonl").string(), "--from", "Fagforbundet Tromsø <nyheter@forbundet.example>"});
    INFO(e.output);
    REQUIRE(e.code == 0);
    auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"});
    INFO(run.output);
    REQUIRE(run.code == 0);
    auto mail = messages_in(maildir);
    REQUIRE(mail.size() == 2);
    auto a = headers_of(slurp(mail[0])), b = headers_of(slurp(mail[1]));
    std::vector<std::string> names_a, names_b;
    for (const auto& [n, v] : a) names_a.push_back(n);
    for (const auto& [n, v] : b) names_b.push_back(n);
    CHECK(names_a == names_b);
    for (const char* same : {"From", "To", "Subject", "MIME-Version", "List-Unsubscribe-Post"})
      CHECK(header(a, same) == header(b, same));
    auto type = [](const std::string& v) { return v.substr(0, v.find(';')); };
    CHECK(type(header(a, "Content-Type")) == "multipart/alternative");
    CHECK(type(header(a, "Content-Type")) == type(header(b, "Content-Type")));
  }

  SECTION("a relay's 550: exit 1, the reply printed, recorded failed with a dead letter") {
    grant(dir, config, "M2");
    auto r = run_cli(dir, send_args(config, "avvist@avd1.example", "M2"));
    INFO(r.output);
    CHECK(r.code == 1);
    CHECK(r.output.find("relay:     permanent (550") != std::string::npos);
    auto campaign = campaign_of(r.output);
    auto s = campaign_status(dir, config, campaign);
    require_adds_up(s, 1);
    CHECK(field(s, "failed") == 1);
    CHECK(field(s, "dead_letters") == 1);
    CHECK(messages_in(maildir).empty());
  }

  SECTION("--dry-run prints the message, sends and records nothing; the recipient's IDN domain in xn-- form") {
    auto r = run_cli(dir, send_args(config, "kari@bølgen.example", "M1", {"--dry-run"}));
    INFO(r.output);
    CHECK(r.code == 0);
    CHECK(r.output.find("to:        kari@xn--blgen-vua.example") != std::string::npos);
    CHECK(r.output.find("Subject: =?utf-8?") != std::string::npos);
    CHECK(r.output.find("List-Unsubscribe: <https://min.forbundet.example/avmeld?t=") != std::string::npos);
    CHECK(messages_in(maildir).empty());
    CHECK(redis_integer(redis, {"ZCARD", "budstikke:campaigns:all"}) == 0);
  }

  SECTION("inline --subject/--text/--html, a transactional message without consent records") {
    auto r = run_cli(dir, {"send", "--channel", "email", "--config", config.string(), "--to", "kari@avd1.example",
                           "--category", "transactional", "--subject", "Kvittering {{n}}", "--text", "Takk, {{n}}.",
                           "--html", "<p>Takk, {{n}}.</p>", "--data", R"({"n":"Kari"})", "--from",
                           "post@forbundet.example", "--from-name", "Forbundet"});
    INFO(r.output);
    CHECK(r.code == 0);
    auto mail = messages_in(maildir);
    REQUIRE(mail.size() == 1);
    auto h = headers_of(slurp(mail[0]));
    CHECK(header(h, "Subject") == "Kvittering Kari");
    CHECK(header(h, "From") == "Forbundet <post@forbundet.example>");
    CHECK(header(h, "List-Unsubscribe").empty());  // not a category with List-Unsubscribe
  }

  SECTION("usage: the sender's name given twice, an unreadable sender, a recipient that cannot be sent to") {
    auto twice = run_cli(dir, send_args(config, "kari@avd1.example", "M1", {"--from-name", "Forbundet"}));
    CHECK(twice.code == 2);
    CHECK(twice.output.find("the sender's name is given twice") != std::string::npos);
    auto bad = run_cli(dir, {"send", "--channel", "email", "--config", config.string(), "--to", "kari@avd1.example",
                             "--category", "transactional", "--subject", "s", "--text", "t", "--from",
                             "Forbundet post@forbundet.example"});
    CHECK(bad.code == 2);
    CHECK(bad.output.find("--from: invalid local part (write the sender as address or as Name <address>)") != std::string::npos);
    auto to = run_cli(dir, send_args(config, "kari@localhost", "M1"));
    CHECK(to.code == 2);
    CHECK(to.output.find("error: --to: invalid domain") != std::string::npos);
    fs::create_directories(dir / "templates" / "subject-only");
    std::ofstream(dir / "templates" / "subject-only" / "subject.mustache") << "Hei";
    auto set = run_cli(dir, {"send", "--channel", "email", "--config", config.string(), "--to", "kari@avd1.example",
                             "--category", "transactional", "--template", (dir / "templates" / "subject-only").string(),
                             "--from", "post@forbundet.example"});
    CHECK(set.code == 2);
    CHECK(set.output.find("an e-mail template set needs text.mustache or html.mustache") != std::string::npos);
  }
}

TEST_CASE("e2e: send --channel email keeps quiet hours unless told, and reads suppression like the engine") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  // A quiet window around now (UTC), for e-mail newsletters only.
  const auto now = std::chrono::floor<std::chrono::minutes>(std::chrono::system_clock::now()).time_since_epoch();
  const auto minute = [](std::chrono::minutes m) {
    const auto of_day = (m.count() % 1440 + 1440) % 1440;
    return fmt::format("\"{:02}:{:02}\"", of_day / 60, of_day % 60);
  };
  const auto m = std::chrono::duration_cast<std::chrono::minutes>(now);
  auto config = send_config(dir, redis, sink.port,
                            "quiet_hours:\n  - { channel: email, categories: [newsletter], from: " +
                                minute(m - std::chrono::minutes(60)) + ", to: " + minute(m + std::chrono::minutes(60)) +
                                ", timezone: UTC }\n");
  grant(dir, config, "M1");
  auto quiet = run_cli(dir, send_args(config, "kari@avd1.example", "M1"));
  INFO(quiet.output);
  CHECK(quiet.code == 2);
  CHECK(quiet.output.find("not sent: quiet hours for email newsletter until") != std::string::npos);
  CHECK(messages_in(maildir).empty());

  // The suppression list is keyed by the address as the engine sends to it: lower case, IDN in xn--.
  auto add = run_cli(dir, {"suppress", "add", "--config", config.string(), "--channel", "email", "--address",
                           "Kari@Bølgen.example", "--reason", "hard-bounce"});
  INFO(add.output);
  REQUIRE(add.code == 0);
  auto suppressed = run_cli(dir, send_args(config, "kari@bølgen.example", "M1", {"--ignore-quiet-hours"}));
  INFO(suppressed.output);
  CHECK(suppressed.code == 2);
  CHECK(suppressed.output.find("not sent: suppressed: hard-bounce") != std::string::npos);

  auto sent = run_cli(dir, send_args(config, "kari@avd1.example", "M1", {"--ignore-quiet-hours"}));
  INFO(sent.output);
  CHECK(sent.code == 0);
  CHECK(messages_in(maildir).size() == 1);
}

TEST_CASE("e2e: consent show|grant|withdraw and suppress add|remove|list round trip against Redis") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto config = send_config(dir, redis, 25);
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.end(), {"--config", config.string()});
    auto r = run_cli(dir, args);
    INFO(r.output);
    return r;
  };
  auto json_of = [](const cli_result& r) {
    INFO(r.output);
    REQUIRE(r.code == 0);
    return boost::json::parse(r.output).as_object();
  };

  auto empty = json_of(cli({"consent", "show", "--member", "M7", "--json"}));
  CHECK(empty.at("consent").as_array().empty());

  auto g = json_of(cli({"consent", "grant", "--member", "M7", "--channel", "email", "--category", "newsletter",
                        "--source", "telefon 2026-12-02", "--json"}));
  CHECK(g.at("state").as_string() == "granted");
  CHECK(g.at("replaced").is_null());
  CHECK(cli({"consent", "withdraw", "--member", "M7", "--channel", "sms", "--category", "*", "--source", "portal",
             "--json"}).code == 0);
  CHECK(cli({"suppress", "add", "--channel", "email", "--address", "Per@Avd2.example", "--reason", "complaint"}).code == 0);

  auto shown = json_of(cli({"consent", "show", "--member", "M7", "--email", "per@avd2.example", "--phone",
                            "412 34 567", "--json"}));
  auto records = shown.at("consent").as_array();
  REQUIRE(records.size() == 2);
  CHECK(records[0].at("channel").as_string() == "email");
  CHECK(records[0].at("category").as_string() == "newsletter");
  CHECK(records[0].at("source").as_string() == "telefon 2026-12-02");
  CHECK(records[1].at("channel").as_string() == "sms");
  CHECK(records[1].at("category").as_string() == "*");
  CHECK(records[1].at("state").as_string() == "withdrawn");
  auto suppression = shown.at("suppression").as_array();
  REQUIRE(suppression.size() == 2);
  CHECK(suppression[0].at("address").as_string() == "per@avd2.example");
  CHECK(suppression[0].at("suppressed").as_bool());
  CHECK(suppression[0].at("reason").as_string() == "complaint");
  CHECK(suppression[1].at("address").as_string() == "+4741234567");
  CHECK_FALSE(suppression[1].at("suppressed").as_bool());
  std::map<std::string, std::string> would;
  for (const auto& w : shown.at("would_send").as_array()) {
    const auto& o = w.as_object();
    would[std::string(o.at("channel").as_string()) + ":" + std::string(o.at("category").as_string())] =
        o.at("sends").as_bool() ? "sends" : std::string(o.at("reason").as_string());
  }
  CHECK(would["email:newsletter"] == "suppressed: complaint");
  CHECK(would["sms:newsletter"].rfind("consent withdrawn ", 0) == 0);
  CHECK(would["sms:transactional"].rfind("consent withdrawn ", 0) == 0);

  // The text form names the same.
  auto text = cli({"consent", "show", "--member", "M7", "--email", "per@avd2.example"});
  CHECK(text.code == 0);
  CHECK(text.output.find("email:newsletter         granted ") != std::string::npos);
  CHECK(text.output.find("email newsletter       not sent: suppressed: complaint") != std::string::npos);

  // A grant replaces a withdrawal and says so.
  auto regrant = json_of(cli({"consent", "grant", "--member", "M7", "--channel", "sms", "--category", "*", "--source",
                              "portal", "--json"}));
  CHECK(regrant.at("replaced").at("state").as_string() == "withdrawn");

  // The list, the same address a second time, and removal.
  auto again = cli({"suppress", "add", "--channel", "email", "--address", "per@avd2.example", "--reason", "hard-bounce"});
  CHECK(again.output.find("was already suppressed: complaint") != std::string::npos);
  auto listed = json_of(cli({"suppress", "list", "--channel", "email", "--json"}));
  REQUIRE(listed.at("entries").as_array().size() == 1);
  CHECK(listed.at("entries").as_array()[0].at("address").as_string() == "per@avd2.example");
  auto removed = json_of(cli({"suppress", "remove", "--channel", "email", "--address", "PER@avd2.example", "--json"}));
  CHECK(removed.at("results").as_array()[0].at("result").as_string() == "removed");
  CHECK(json_of(cli({"suppress", "list", "--channel", "email", "--json"})).at("entries").as_array().empty());
  CHECK(redis_integer(redis, {"HLEN", "budstikke:suppressed:email"}) == 0);

  // Bad input names what and where; Redis is not touched.
  auto bad = cli({"suppress", "add", "--channel", "sms", "--address", "12", "--reason", "x"});
  CHECK(bad.code == 2);
  CHECK(bad.output.find("--address '12'") != std::string::npos);
  auto channel = cli({"consent", "grant", "--member", "M7", "--channel", "fax", "--category", "x", "--source", "y"});
  CHECK(channel.code == 2);
  CHECK(channel.output.find("--channel 'fax': expected email or sms") != std::string::npos);
}

TEST_CASE("e2e: send --channel email to aiosmtpd: the message parses strictly with Python's email package") {
  if (!python_module_available("aiosmtpd.controller")) {
    WARN("SKIPPED: /usr/bin/python3 cannot import aiosmtpd (Debian package python3-aiosmtpd)");
    return;
  }
  temp_dir dir;
  auto redis = start_redis(dir);
  fs::create_directories(dir / "out");
  // Stores the message, then parses it with the strict policy: any defect fails the send (550).
  std::ofstream(dir / "server.py") << R"PY(
import email, email.policy, os, signal, sys
from aiosmtpd.controller import Controller
port, out = int(sys.argv[1]), sys.argv[2]
class Handler:
    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content
        open(os.path.join(out, "message.eml"), "wb").write(data)
        try:
            msg = email.message_from_bytes(data, policy=email.policy.strict)
            problems = list(msg.defects)
            for part in msg.walk():
                problems += part.defects
            if problems:
                return "550 defects: %s" % problems
            parts = [p.get_content_type() for p in msg.walk()]
            text = msg.get_body(("plain",)).get_content()
            report = "%s|%s|%s|%s" % (msg["From"].addresses[0].display_name, msg["Subject"], ",".join(parts),
                                      "Kari Nordmann" in text)
            open(os.path.join(out, "report.txt"), "w", encoding="utf-8").write(report)
        except Exception as e:
            return "550 cannot parse: %s" % e
        return "250 2.0.0 parsed"
c = Controller(Handler(), hostname="127.0.0.1", port=port)
c.start()
print("ready", flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
c.stop()
)PY";
  auto port = budstikke::support::free_loopback_port();
  auto server = budstikke::support::child_process::spawn(
      {python, (dir / "server.py").string(), std::to_string(port), (dir / "out").string()}, (dir / "aiosmtpd.log").string());
  REQUIRE(budstikke::support::wait_for_port(port, std::chrono::seconds(20)));
  auto config = send_config(dir, redis, port);
  grant(dir, config, "M1");
  auto r = run_cli(dir, send_args(config, "kari@avd1.example", "M1"));
  INFO(r.output);
  INFO(slurp(dir / "aiosmtpd.log"));
  REQUIRE(r.code == 0);
  CHECK(r.output.find("250 2.0.0 parsed") != std::string::npos);
  CHECK(slurp(dir / "out" / "report.txt") ==
        "Fagforbundet Tromsø|Nytt fra Tromsø: tariffoppgjøret er klart|multipart/alternative,text/plain,text/html|True");
  server.stop();
}

TEST_CASE("e2e: send --channel email takes its token from the rate limits the engine shares") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  // One e-mail every two seconds, every engine and `send` together.
  auto config = send_config(dir, redis, sink.port, "limits:\n  email: 0.5\n");
  auto args = [&](const std::string& to) {
    return std::vector<std::string>{"send", "--channel", "email", "--config", config.string(), "--to", to,
                                    "--category", "transactional", "--subject", "s", "--text", "t", "--from",
                                    "post@forbundet.example"};
  };
  auto first = run_cli(dir, args("a@avd1.example"));
  INFO(first.output);
  REQUIRE(first.code == 0);
  const auto start = std::chrono::steady_clock::now();
  auto second = run_cli(dir, args("b@avd1.example"));
  const auto took = std::chrono::steady_clock::now() - start;
  INFO(second.output);
  REQUIRE(second.code == 0);
  CHECK(second.output.find("waiting for a token of the rate limit budstikke:{rate}:email") != std::string::npos);
  CHECK(took >= std::chrono::milliseconds(1500));
  CHECK(messages_in(maildir).size() == 2);
}
