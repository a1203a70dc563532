// The Lua scripts on a real redis-server: the contracts that no other test checks call by call
// (append_events, withdraw_consent, transition), that a session calls every script by its SHA1
// only, and that SCRIPT FLUSH in the middle of a session changes no reply, not even in a
// pipeline where some script calls ran and others had to be sent again.
#include <map>

#include "queue/campaign_store.hpp"
#include "queue/consent.hpp"
#include "queue/rate_limit.hpp"
#include "tests/queue/redis_session.hpp"
#include "tests/support/redis_info.hpp"

using namespace budstikke;
using namespace budstikke::testing;
using queue::request;

namespace {

const queue::keys k("t:");
constexpr std::int64_t t0 = 1'780'000'000'000'000;  // µs since the epoch

struct script_stats {
  std::int64_t evalsha = 0, eval = 0, noscript = 0;
};
script_stats stats(redis_session& redis) {
  auto commands = redis.info("commandstats");
  return {info_number(commands, "cmdstat_evalsha", "calls"), info_number(commands, "cmdstat_eval", "calls"),
          info_number(redis.info("errorstats"), "errorstat_NOSCRIPT", "count")};
}

std::string text(const redisReply* r) { return std::string(queue::as_string(r)); }

// A campaign `c` with one entry, read by consumer x; returns the entry's id.
std::string campaign_with_one_entry(redis_session& redis) {
  request req;
  req.command("HSET", k.campaign("c"), "id", "c", "channel", "email", "state", "active", "total", 1);
  req.command("XGROUP", "CREATE", k.recipients("c"), queue::consumer_group, "0", "MKSTREAM");
  req.command("XADD", k.recipients("c"), "*", "to", "m@x.example", "id", "M0");
  req.command("XREADGROUP", "GROUP", queue::consumer_group, "x", "STREAMS", k.recipients("c"), ">");
  auto r = redis.exec(req);
  std::string id;
  queue::for_each_entry(r[3].get(), [&](std::string_view, const queue::stream_entry& e) { id = e.id; });
  REQUIRE_FALSE(id.empty());
  return id;
}

const auto bucket = queue::make_token_bucket(k.rate_bucket("g"), 1000, std::chrono::milliseconds(10));

// One call of each of the seven scripts, each in its own pipeline, each checked against its
// contract. `round` makes every round's calls new work (a new entry state, member, ...).
void call_every_script(redis_session& redis, const std::string& entry, int round) {
  const auto r = std::to_string(round);
  {
    request req;
    queue::append_record_outcomes(req, k, "c", "2026-11-23T10:00:00Z",
                                  {{entry, std::nullopt, "M0", "", false, 0, "", std::nullopt, 0}});
    auto rep = redis.exec(req);
    INFO(text(rep[0].get()));
    REQUIRE(rep[0]->type == REDIS_REPLY_ARRAY);
    CHECK(queue::as_integer(rep[0]->element[0]) == 0);  // a release counts nothing
  }
  {
    request req;
    queue::append_move_due_retries(req, k, "c", 10);
    auto rep = redis.exec(req);
    INFO(text(rep[0].get()));
    REQUIRE(rep[0]->type == REDIS_REPLY_ARRAY);
    CHECK(queue::as_integer(rep[0]->element[0]) == 0);
  }
  {
    request req;
    const std::vector<std::string> none{"1-1"};
    queue::append_requeue_dead(req, k, "c", none);
    auto rep = redis.exec(req);
    INFO(text(rep[0].get()));
    REQUIRE(rep[0]->type == REDIS_REPLY_ARRAY);
    CHECK(queue::as_integer(rep[0]->element[0]) == 0);
  }
  {
    request req;
    queue::begin_append_events(req, k, 1000, "2026-11-23T10:00:00Z", 1);
    req.arg("c").arg(entry).arg("M0").arg("email").arg("sent").arg("").arg("250 ok").arg(1);
    CHECK(queue::as_integer(redis.exec(req)[0].get()) == 1);
  }
  {
    request req;
    queue::append_withdraw_consent(req, k, "M" + r, "email:*", "withdrawn|t|round " + r);
    CHECK(queue::as_integer(redis.exec(req)[0].get()) == 1);
  }
  {
    request req;
    const std::vector<std::string_view> from{"active", "paused"};
    queue::append_transition(req, k, "c", round % 2 ? "paused" : "active", "2026-11-23T10:00:00Z", from);
    auto rep = redis.exec(req);
    CHECK(text(rep[0].get()) == (round % 2 ? "active" : "paused"));
  }
  {
    request req;
    queue::append_take_tokens(req, {&bucket}, 1, t0 + round * 1'000'000);
    auto grant = queue::parse_token_grant(redis.exec(req)[0].get());
    REQUIRE(grant);
    CHECK(grant->granted == 1);
  }
}

}  // namespace

TEST_CASE("scripts: Redis agrees on every SHA1, and a new connection has loaded every script") {
  redis_session redis;
  redis.command("PING");
  for (const queue::script* s : queue::all_scripts()) {
    INFO(s->name);
    CHECK(queue::as_integer(redis.command("SCRIPT", "EXISTS", s->sha1)->element[0]) == 1);
    CHECK(text(redis.command("SCRIPT", "LOAD", s->source).get()) == s->sha1);
  }
}

TEST_CASE("scripts: a session calls every script by its SHA1, never with its source") {
  redis_session redis;
  auto entry = campaign_with_one_entry(redis);
  for (int round = 1; round <= 3; ++round) call_every_script(redis, entry, round);
  auto s = stats(redis);
  CHECK(s.evalsha == 21);
  CHECK(s.eval == 0);
  CHECK(s.noscript == 0);
}

TEST_CASE("scripts: after SCRIPT FLUSH in the middle of a session every script call still succeeds") {
  redis_session redis;
  auto entry = campaign_with_one_entry(redis);
  call_every_script(redis, entry, 1);
  // Another client (an operator, a failover) empties the script cache; the session goes on.
  redis.exec([] { request r; r.command("SCRIPT", "FLUSH"); return r; }(), 1);
  call_every_script(redis, entry, 2);
  auto s = stats(redis);
  CHECK(s.noscript == 7);  // each script's first call after the flush ...
  CHECK(s.eval == 7);      // ... was sent again with its source
  CHECK(s.evalsha == 14);
  // EVAL left each script in the cache: the next calls go by SHA1 again.
  call_every_script(redis, entry, 3);
  s = stats(redis);
  CHECK(s.noscript == 7);
  CHECK(s.eval == 7);
  CHECK(s.evalsha == 21);
}

TEST_CASE("scripts: NOSCRIPT in a pipeline of several script calls keeps every reply in its place") {
  redis_session redis;
  auto entry = campaign_with_one_entry(redis);
  redis.exec([] { request r; r.command("SCRIPT", "FLUSH"); return r; }(), 1);
  // One script known again: its call runs in place, the others after the pipeline.
  redis.exec([] { request r; r.command("SCRIPT", "LOAD", queue::transition_script.source); return r; }(), 1);

  request req;
  const std::vector<std::string_view> from{"active"};
  const std::vector<std::string> no_letters{"1-1"};
  req.command("SET", "t:n", 0);                                                              // 0
  queue::append_withdraw_consent(req, k, "M1", "email:*", "withdrawn|t1|first");             // 1: again
  req.command("INCR", "t:n");                                                                // 2
  queue::append_transition(req, k, "c", "paused", "2026-11-23T10:00:00Z", from);             // 3: in place
  queue::append_take_tokens(req, {&bucket}, 5, t0);                                          // 4: again
  req.command("INCR", "t:n");                                                                // 5
  queue::append_withdraw_consent(req, k, "M1", "email:*", "withdrawn|t2|second");            // 6: again
  req.command("GET", "t:n");                                                                 // 7
  queue::begin_append_events(req, k, 1000, "2026-11-23T10:00:00Z", 2);                       // 8: again
  for (const char* member : {"M1", "M2"})
    req.arg("c").arg(entry).arg(member).arg("email").arg("sent").arg("").arg("250 ok").arg(1);
  queue::append_requeue_dead(req, k, "c", no_letters);                                       // 9: again
  req.command("PING");                                                                       // 10
  auto rep = redis.exec(req);

  REQUIRE(rep.size() == 11);
  CHECK(text(rep[0].get()) == "OK");
  CHECK(queue::as_integer(rep[1].get()) == 1);
  CHECK(queue::as_integer(rep[2].get()) == 1);
  CHECK(text(rep[3].get()) == "active");
  auto grant = queue::parse_token_grant(rep[4].get());
  REQUIRE(grant);
  CHECK(grant->granted == 5);
  CHECK(queue::as_integer(rep[5].get()) == 2);
  CHECK(queue::as_integer(rep[6].get()) == 0);  // sent again after call 1, as it came after it
  CHECK(text(rep[7].get()) == "2");
  CHECK(queue::as_integer(rep[8].get()) == 2);
  REQUIRE(rep[9]->type == REDIS_REPLY_ARRAY);
  CHECK(queue::as_integer(rep[9]->element[0]) == 0);
  CHECK(text(rep[9]->element[1]) == "paused");  // it ran after the transition
  CHECK(text(rep[10].get()) == "PONG");

  CHECK(text(redis.command("HGET", queue::consent_key(k, "M1"), "email:*").get()) == "withdrawn|t1|first");
  auto s = stats(redis);
  CHECK(s.noscript == 5);
  CHECK(s.eval == 5);
  CHECK(s.evalsha == 6);
}

TEST_CASE("scripts: append_events adds one entry per event, capped near the length given") {
  redis_session redis;
  request req;
  queue::begin_append_events(req, k, 1000, "2026-11-23T10:00:00Z", 2);
  req.arg("c").arg("1-0").arg("M1").arg("email").arg("sent").arg("").arg("250 2.0.0 Ok").arg(1);
  req.arg("d").arg("2-0").arg("M2").arg("sms").arg("retrying").arg("gateway busy").arg("429").arg(2);
  CHECK(queue::as_integer(redis.exec(req)[0].get()) == 2);
  auto entries = redis.command("XRANGE", k.events(), "-", "+");
  REQUIRE(entries->elements == 2);
  std::map<std::string, std::string> second;
  const redisReply* f = entries->element[1]->element[1];
  for (std::size_t i = 0; i + 1 < f->elements; i += 2) second[text(f->element[i])] = text(f->element[i + 1]);
  CHECK(second == std::map<std::string, std::string>{{"campaign", "d"}, {"entry", "2-0"}, {"member", "M2"},
                                                     {"channel", "sms"}, {"state", "retrying"},
                                                     {"reason", "gateway busy"}, {"reply", "429"},
                                                     {"attempt", "2"}, {"at", "2026-11-23T10:00:00Z"}});
  // MAXLEN ~ trims whole stream nodes (100 entries each): near the cap, never below it.
  for (int batch = 0; batch < 5; ++batch) {
    request more;
    queue::begin_append_events(more, k, 10, "2026-11-23T10:00:00Z", 100);
    for (int i = 0; i < 100; ++i) more.arg("c").arg("1-0").arg("M").arg("email").arg("sent").arg("").arg("").arg(1);
    CHECK(queue::as_integer(redis.exec(more)[0].get()) == 100);
  }
  auto length = queue::as_integer(redis.command("XLEN", k.events()).get());
  CHECK(length >= 10);
  CHECK(length <= 200);
}

TEST_CASE("scripts: withdraw_consent records the first withdrawal and keeps it") {
  redis_session redis;
  const auto key = queue::consent_key(k, "M1");
  redis.command("HSET", key, "email:newsletter", "granted|2026-11-01T00:00:00Z|portal");
  auto withdraw = [&](std::string_view field, std::string_view value) {
    request req;
    queue::append_withdraw_consent(req, k, "M1", field, value);
    return queue::as_integer(redis.exec(req)[0].get());
  };
  CHECK(withdraw("email:newsletter", "withdrawn|2026-11-23T10:00:00Z|unsubscribe-link") == 1);  // over a grant
  CHECK(withdraw("email:newsletter", "withdrawn|2026-11-24T10:00:00Z|portal") == 0);
  CHECK(text(redis.command("HGET", key, "email:newsletter").get()) == "withdrawn|2026-11-23T10:00:00Z|unsubscribe-link");
  CHECK(withdraw("sms:*", "withdrawn|2026-11-24T10:00:00Z|portal") == 1);  // another field
}

TEST_CASE("scripts: transition moves a campaign only from the states it names") {
  redis_session redis;
  auto transition = [&](std::string_view target, std::vector<std::string_view> from) {
    request req;
    queue::append_transition(req, k, "c", target, "2026-11-23T10:00:00Z", from);
    return std::move(redis.exec(req)[0]);
  };
  CHECK(queue::is_nil(transition("paused", {"active"}).get()));  // no such campaign
  CHECK(queue::as_integer(redis.command("EXISTS", k.campaign("c")).get()) == 0);
  redis.command("HSET", k.campaign("c"), "state", "active");
  CHECK(text(transition("paused", {"active"}).get()) == "active");
  CHECK(text(redis.command("HGET", k.campaign("c"), "state").get()) == "paused");
  CHECK(text(redis.command("HGET", k.campaign("c"), "paused_at").get()) == "2026-11-23T10:00:00Z");
  CHECK(text(transition("paused", {"active"}).get()) == "paused");  // not from paused: unchanged
  CHECK(text(transition("cancelled", {"active", "paused"}).get()) == "paused");
  CHECK(text(redis.command("HGET", k.campaign("c"), "state").get()) == "cancelled");
  CHECK(text(transition("active", {"paused"}).get()) == "cancelled");
  CHECK(text(redis.command("HGET", k.campaign("c"), "state").get()) == "cancelled");
}
