// A buggy portal writes hostile entries straight into Redis: each ends in one state with a
// reason, none crashes the engine, none injects a header or an SMTP command.
#include "queue/campaign_store.hpp"
#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;
namespace asio = boost::asio;
namespace q = budstikke::queue;


TEST_CASE("e2e: hostile stream entries are skipped or failed with a reason, never sent unsafely") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  auto config = write_config(dir, redis, sink.port);

  std::vector<std::pair<std::string, std::string>> rows;  // entry: to, data
  with_redis(redis, [&](q::connection& conn) -> asio::awaitable<void> {
    q::campaign_definition def;
    def.id = "hostile";
    def.from_address = "nyheter@forbundet.example";
    def.templates = {{"subject", "Hei {{name}}"}, {"text", "Hei {{name}}\n"}};
    q::campaign_writer writer(conn, q::keys(), def);
    // Never co_await inside a Catch macro: it may evaluate its expression more than once.
    auto created = co_await writer.async_create();
    INFO((created ? std::string() : created.error().message));
    REQUIRE(created.has_value());
    writer.add("ikke-en-adresse", "M1", "{}");                                   // skipped: no @
    writer.add("ola@avd1.example\r\nRCPT TO:<evil@x.example>", "M2", "{}");     // skipped: control character
    writer.add("kari@avd1.example", "M3", "[1,2]");                             // failed: data not an object
    writer.add("per@avd1.example", "M4", "{broken");                            // failed: data not JSON
    writer.add("åse@avd1.example", "M5", "{}");                                 // sent: the sink offers SMTPUTF8
    writer.add("trond@avd1.example", "M6", R"({"name":"Trond\r\nBcc: evil@x.example"})");  // sent, safely
    writer.add("\"a b\"@avd1.example", "M8", "{}");  // skipped: To: could not name the envelope's mailbox
    writer.add("m9@avd1.example", std::string(300, '9'), "{}");                 // failed: member id too long
    writer.add(std::string(321, '+'), "M10", "{}");                              // failed: 'to' too long
    auto flushed = co_await writer.async_flush();
    REQUIRE(flushed.has_value());
    // An entry without `to`, as a portal with a bug might write it.
    q::request req;
    req.command("XADD", q::keys().recipients("hostile"), "*", "id", "M7", "data", "{}");
    std::vector<q::reply_ptr> replies;
    auto added = co_await conn.async_exec(req, replies);
    REQUIRE_FALSE(added);
    req.clear();
    req.command("HSET", q::keys().campaign("hostile"), "total", 10);
    req.command("ZADD", q::keys().registry(), 5, "hostile");
    auto sealed = co_await conn.async_exec(req, replies);
    REQUIRE_FALSE(sealed);
  });

  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"});
  INFO(run.output);
  REQUIRE(run.code == 0);
  auto s = campaign_status(dir, config, "hostile");
  require_adds_up(s, 10);
  CHECK(field(s, "sent") == 2);
  CHECK(field(s, "skipped") == 3);
  CHECK(field(s, "failed") == 5);

  auto reasons = outcome_reasons(redis, "hostile");
  CHECK(reasons["M1"] == "address has no @");
  CHECK(reasons["M2"] == "control character in address");
  CHECK(reasons["M3"] == "template data is not a JSON object");
  CHECK(reasons["M4"].rfind("template data is not valid JSON", 0) == 0);
  CHECK(reasons["M7"].find("'to' missing") != std::string::npos);
  CHECK(reasons["M8"] == "quoted local part with characters that need quoting (blanks, specials, escapes): not supported");
  CHECK(reasons["M10"] == "'to' longer than 320 bytes");
  // The oversized member id is not carried into the outcome.
  CHECK(reasons["(none)"] == "'id' (member id) longer than 256 bytes");

  // The messages sent have no injected header.
  auto seen = arrivals(maildir);
  REQUIRE(seen.size() == 2);
  CHECK(seen.count("trond@avd1.example") == 1);
  CHECK(seen.count("åse@avd1.example") == 1);
  std::string message;
  for (auto& f : fs::directory_iterator(maildir / "new")) {
    auto m = slurp(f.path());
    if (m.find("Trond") != std::string::npos) message = m;
  }
  REQUIRE_FALSE(message.empty());
  auto header = message.substr(0, message.find("\r\n\r\n") + 2);
  CHECK(header.find("\nBcc") == std::string::npos);
  CHECK(header.find("\r\nRCPT") == std::string::npos);
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == '\n') CHECK((i > 0 && header[i - 1] == '\r'));
}

TEST_CASE("e2e: a campaign whose definition is unusable fails each recipient with the reason, and completes") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto sink = start_own_sink(dir);
  auto config = write_config(dir, redis, sink.port);
  with_redis(redis, [&](q::connection& conn) -> asio::awaitable<void> {
    q::campaign_definition def;
    def.id = "broken";
    def.from_address = "nyheter@forbundet.example";
    def.templates = {{"text", "Hei {{#name}}\n"}};  // an unclosed section: does not compile
    q::campaign_writer writer(conn, q::keys(), def);
    auto created = co_await writer.async_create();
    REQUIRE(created.has_value());
    for (int i = 0; i < 4; ++i) writer.add("m" + std::to_string(i) + "@avd1.example", "M" + std::to_string(i), "{}");
    auto sealed = co_await writer.async_seal();
    REQUIRE(sealed.has_value());
    // A second campaign whose hash a buggy portal wrote with a priority that is not a number.
    q::campaign_definition def2 = def;
    def2.id = "broken2";
    def2.templates = {{"text", "Hei\n"}};
    q::campaign_writer writer2(conn, q::keys(), def2);
    created = co_await writer2.async_create();
    REQUIRE(created.has_value());
    writer2.add("a@avd1.example", "A", "{}");
    sealed = co_await writer2.async_seal();
    REQUIRE(sealed.has_value());
    q::request req;
    req.command("HSET", q::keys().campaign("broken2"), "priority", "high");
    std::vector<q::reply_ptr> replies;
    auto set = co_await conn.async_exec(req, replies);
    REQUIRE_FALSE(set);
  });
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"});
  INFO(run.output);
  REQUIRE(run.code == 0);
  auto s = campaign_status(dir, config, "broken");
  require_adds_up(s, 4);
  CHECK(field(s, "failed") == 4);
  auto s2 = campaign_status(dir, config, "broken2");
  require_adds_up(s2, 1);
  CHECK(field(s2, "failed") == 1);
  CHECK(run.output.find("field 'priority' is 'high'") != std::string::npos);
}

TEST_CASE("e2e: a registry id that enqueue would refuse is skipped and said, the other campaigns are served") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  auto config = write_config(dir, redis, sink.port);
  const std::string hostile = "x}:y{z";
  const q::keys k;
  with_redis(redis, [&](q::connection& conn) -> asio::awaitable<void> {
    q::campaign_definition def;
    def.id = "fine";
    def.from_address = "nyheter@forbundet.example";
    def.templates = {{"subject", "Hei"}, {"text", "Hei\n"}};
    q::campaign_writer writer(conn, k, def);
    auto created = co_await writer.async_create();
    REQUIRE(created.has_value());
    writer.add("fine@avd1.example", "M1", "{}");
    auto sealed = co_await writer.async_seal();
    REQUIRE(sealed.has_value());
    // A complete campaign under an id with hash-tag braces, written by hand as a buggy portal would.
    def.id = hostile;
    q::request req;
    req.begin(2 + 2 * def.to_fields().size()).arg("HSET").arg(k.campaign(hostile));
    for (auto& [name, value] : def.to_fields()) req.arg(name).arg(value);
    req.command("HSET", k.campaign(hostile), "total", 1);
    req.command("XGROUP", "CREATE", k.recipients(hostile), q::consumer_group, "0", "MKSTREAM");
    req.command("XADD", k.recipients(hostile), "*", "to", "hostile@avd1.example", "id", "H1", "data", "{}");
    req.command("ZADD", k.registry(), 9, hostile);
    std::vector<q::reply_ptr> replies;
    auto written = co_await conn.async_exec(req, replies);
    REQUIRE_FALSE(written);
    for (auto& r : replies) REQUIRE(q::error_of(r.get()) == std::nullopt);
  });
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"});
  INFO(run.output);
  REQUIRE(run.code == 0);
  CHECK(run.output.find("the campaign registry holds ids that are not valid campaign ids") != std::string::npos);
  require_adds_up(campaign_status(dir, config, "fine"), 1);
  auto seen = arrivals(maildir);
  CHECK(seen == std::map<std::string, int>{{"fine@avd1.example", 1}});
  // Nothing was read or recorded under the hostile id's keys.
  CHECK(redis_integer(redis, {"EXISTS", k.counts(hostile)}) == 0);
  CHECK(redis_integer(redis, {"XLEN", k.recipients(hostile)}) == 1);
}
