// A retry set with members a buggy or hostile writer spoiled: the good retries still move and are
// sent; each bad member leaves the set and is recorded `failed` with its reason (counts, outcome,
// dead letter, event), so the campaign completes and its counts add up.
#include <boost/json.hpp>

#include "queue/campaign_store.hpp"
#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;
namespace asio = boost::asio;
namespace json = boost::json;
namespace q = budstikke::queue;

TEST_CASE("e2e: malformed retry-set members are recorded failed; the good retries are moved and sent") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  auto config = write_config(dir, redis, sink.port);
  const q::keys k;
  constexpr int n = 5;

  with_redis(redis, [&](q::connection& conn) -> asio::awaitable<void> {
    q::campaign_definition def;
    def.id = "spoilt";
    def.from_address = "nyheter@forbundet.example";
    def.templates = {{"subject", "Hei"}, {"text", "Hei {{name}}\n"}};
    q::campaign_writer writer(conn, k, def);
    auto created = co_await writer.async_create();
    REQUIRE(created.has_value());
    for (int i = 0; i < n; ++i)
      writer.add("m" + std::to_string(i) + "@avd1.example", "M" + std::to_string(i), R"({"name":"Åse"})");
    auto sealed = co_await writer.async_seal();
    REQUIRE(sealed.has_value());

    // An engine read every entry and got a transient answer for each: all five wait in the retry
    // set, due now, as record_outcomes writes them.
    q::request req;
    req.command("XREADGROUP", "GROUP", q::consumer_group, "gone", "STREAMS", k.recipients("spoilt"), ">");
    std::vector<q::reply_ptr> replies;
    auto read = co_await conn.async_exec(req, replies);
    REQUIRE_FALSE(read);
    std::vector<std::string> ids;
    q::for_each_entry(replies[0].get(), [&](std::string_view, const q::stream_entry& e) { ids.emplace_back(e.id); });
    REQUIRE(ids.size() == n);
    std::vector<std::string> members;  // outcome_record holds views
    for (int i = 0; i < n; ++i) members.push_back("M" + std::to_string(i));
    std::vector<q::outcome_record> recs;
    for (int i = 0; i < n; ++i) recs.push_back({ids[i], std::nullopt, members[i], "451 later", false, 1, "451 later", 0, 0});
    req.clear();
    q::append_record_outcomes(req, k, "spoilt", "2026-12-02T10:00:00.000Z", recs);
    auto recorded = co_await conn.async_exec(req, replies);
    REQUIRE_FALSE(recorded);
    REQUIRE(q::error_of(replies[0].get()) == std::nullopt);

    // Spoil three of them in place (same score): M2 loses its last value, M3's data becomes an
    // object, and M4 is not JSON at all.
    req.clear();
    req.command("ZRANGE", k.retry("spoilt"), 0, -1, "WITHSCORES");
    auto ranged = co_await conn.async_exec(req, replies);
    REQUIRE_FALSE(ranged);
    const redisReply* r = replies[0].get();
    REQUIRE(r->type == REDIS_REPLY_ARRAY);
    REQUIRE(r->elements == 2 * n);
    q::request spoil;
    for (std::size_t i = 0; i < r->elements; i += 2) {
      std::string member(q::as_string(r->element[i]));
      std::string score(q::as_string(r->element[i + 1]));
      auto v = json::parse(member).as_object();
      auto& fields = v.at("fields").as_array();
      std::string id;
      for (std::size_t f = 0; f + 1 < fields.size(); f += 2)
        if (fields[f].as_string() == "id") id = std::string(fields[f + 1].as_string());
      std::string spoilt;
      if (id == "M2") {
        fields.pop_back();
        spoilt = json::serialize(v);
      } else if (id == "M3") {
        for (std::size_t f = 0; f + 1 < fields.size(); f += 2)
          if (fields[f].as_string() == "data") fields[f + 1] = json::object{{"name", "Åse"}};
        spoilt = json::serialize(v);
      } else if (id == "M4") {
        spoilt = "{\"fields\": [\"to\", ";
      } else {
        continue;
      }
      spoil.command("ZREM", k.retry("spoilt"), member);
      spoil.command("ZADD", k.retry("spoilt"), score, spoilt);
    }
    REQUIRE(spoil.commands() == 6);
    auto spoiled = co_await conn.async_exec(spoil, replies);
    REQUIRE_FALSE(spoiled);
  });
  REQUIRE(redis_integer(redis, {"ZCARD", k.retry("spoilt")}) == n);

  // Before, the mover's script failed on the first bad member and nothing of the campaign moved
  // again: --until-idle never finished.
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, std::chrono::seconds(60));
  INFO(run.output);
  REQUIRE(run.code == 0);

  auto s = campaign_status(dir, config, "spoilt");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == 2);
  CHECK(field(s, "failed") == 3);
  CHECK(redis_integer(redis, {"ZCARD", k.retry("spoilt")}) == 0);
  CHECK(redis_integer(redis, {"HGET", k.counts("spoilt"), "retrying"}) == 0);
  CHECK(redis_integer(redis, {"HGET", k.counts("spoilt"), "retried"}) == 2);

  auto seen = arrivals(maildir);
  CHECK(seen == std::map<std::string, int>{{"m0@avd1.example", 1}, {"m1@avd1.example", 1}});

  auto reasons = outcome_reasons(redis, "spoilt");
  CHECK(reasons.size() == 3);
  CHECK(reasons["M2"] == "unusable retry: an odd number of field names and values");
  CHECK(reasons["M3"] == "unusable retry: a field name or value that is not a string");
  CHECK(reasons["(none)"] == "unusable retry: not JSON");

  // A dead letter each, with what could be saved of the member for a requeue.
  auto dead = stream_records(redis, k.dead("spoilt"));
  REQUIRE(dead.size() == 3);
  std::map<std::string, std::map<std::string, std::string>> dead_by_member;
  for (auto& d : dead) dead_by_member[d.fields["member"]] = d.fields;
  CHECK(dead_by_member["M2"]["to"] == "m2@avd1.example");
  CHECK(dead_by_member["M3"]["to"] == "m3@avd1.example");
  CHECK(dead_by_member["M3"]["data"].empty());

  // One event per recipient, the failed ones with their reasons.
  std::map<std::string, int> states;
  int unusable = 0;
  for (auto& e : stream_records(redis, k.events())) {
    if (e.fields["campaign"] != "spoilt") continue;
    ++states[e.fields["state"]];
    if (e.fields["reason"].rfind("unusable retry: ", 0) == 0) ++unusable;
  }
  CHECK(states["sent"] == 2);
  CHECK(states["failed"] == 3);
  CHECK(unusable == 3);
}
