// The retry, dead-letter and requeue scripts against a real redis-server, edge by edge: replays
// count nothing twice, a retry is moved only when due, the origin survives several retries, and
// a dead letter is requeued once.
#include "queue/campaign_store.hpp"
#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;
namespace queue = budstikke::queue;

namespace {

const queue::keys k;

struct script_fixture {
  temp_dir dir;
  redis_server redis = start_redis(dir);

  std::vector<queue::reply_ptr> exec(queue::request& req) {
    std::vector<queue::reply_ptr> replies;
    with_redis(redis, [&](queue::connection& conn) -> boost::asio::awaitable<void> {
      auto ec = co_await conn.async_exec(req, replies);
      REQUIRE_FALSE(ec);
    });
    return replies;
  }
  std::vector<queue::reply_ptr> record(const std::vector<queue::outcome_record>& recs) {
    queue::request req;
    queue::append_record_outcomes(req, k, "c", "2026-11-23T10:00:00.000Z", recs);
    return exec(req);
  }
  // A campaign of `n` entries, all read by consumer x; returns their ids.
  std::vector<std::string> campaign(int n) {
    queue::request req;
    req.command("HSET", k.campaign("c"), "id", "c", "channel", "email", "state", "active", "total", n);
    req.command("XGROUP", "CREATE", k.recipients("c"), queue::consumer_group, "0", "MKSTREAM");
    for (int i = 0; i < n; ++i)
      req.command("XADD", k.recipients("c"), "*", "to", "m" + std::to_string(i) + "@x.example", "id",
                  "M" + std::to_string(i), "data", "{\"n\":" + std::to_string(i) + "}");
    exec(req);
    return read_new();
  }
  std::vector<std::string> read_new() {
    queue::request req;
    req.command("XREADGROUP", "GROUP", queue::consumer_group, "x", "STREAMS", k.recipients("c"), ">");
    auto r = exec(req);
    std::vector<std::string> ids;
    queue::for_each_entry(r[0].get(), [&](std::string_view, const queue::stream_entry& e) { ids.emplace_back(e.id); });
    return ids;
  }
  std::int64_t integer(const std::vector<std::string>& args) { return redis_integer(redis, args); }
};

std::vector<std::int64_t> counted(const redisReply* r) {
  std::vector<std::int64_t> out;
  REQUIRE(r->type == REDIS_REPLY_ARRAY);
  REQUIRE(r->elements == 3);
  for (std::size_t i = 0; i < r->element[2]->elements; ++i) out.push_back(*queue::as_integer(r->element[2]->element[i]));
  return out;
}

}  // namespace

TEST_CASE("scripts: a retry is scheduled once, moved back only when due, with attempt, paused, deferred and origin") {
  script_fixture f;
  auto ids = f.campaign(2);
  REQUIRE(ids.size() == 2);
  std::vector<queue::outcome_record> recs{{ids[0], std::nullopt, "M0", "451 later", false, 1, "451 later", 0, 0, 1796176350912},
                                          {ids[1], std::nullopt, "M1", "451 later", false, 2, "451 later", 60000, 3}};
  auto first = f.record(recs);
  CHECK(counted(first[0].get()) == std::vector<std::int64_t>{1, 1});
  auto replay = f.record(recs);  // a lost reply, sent again
  CHECK(counted(replay[0].get()) == std::vector<std::int64_t>{0, 0});
  CHECK(f.integer({"ZCARD", k.retry("c")}) == 2);
  CHECK(f.integer({"HGET", k.counts("c"), "retrying"}) == 2);
  CHECK(f.integer({"XLEN", k.outcomes("c")}) == 0);  // a retry is not an outcome

  queue::request move;
  queue::append_move_due_retries(move, k, "c", 500);
  auto moved = f.exec(move);
  REQUIRE(moved[0]->type == REDIS_REPLY_ARRAY);
  CHECK(queue::as_integer(moved[0]->element[0]) == 1);  // the other is due in a minute
  CHECK(queue::as_integer(moved[0]->element[1]) == 1);
  CHECK(f.integer({"HGET", k.counts("c"), "retrying"}) == 1);
  CHECK(f.integer({"HGET", k.counts("c"), "retried"}) == 1);

  auto again = f.read_new();
  REQUIRE(again.size() == 1);
  auto entries = stream_records(f.redis, k.recipients("c"));
  REQUIRE(entries.size() == 3);
  auto& e = entries.back().fields;
  CHECK(e["to"] == "m0@x.example");
  CHECK(e["id"] == "M0");
  CHECK(e["data"] == "{\"n\":0}");
  CHECK(e["attempt"] == "1");
  CHECK(e["paused"] == "0");
  CHECK(e["deferred"] == "1796176350912");
  CHECK(e["origin"] == ids[0]);

  // Retried again and again: the origin stays the portal's entry, attempt is replaced, not repeated.
  f.record({{again[0], std::nullopt, "M0", "451 later", false, 2, "451 later", 0, 1, 1796176350912}});
  f.exec(move);
  auto third = f.read_new();
  REQUIRE(third.size() == 1);
  entries = stream_records(f.redis, k.recipients("c"));
  auto& e3 = entries.back().fields;
  CHECK(e3.size() == 7);
  CHECK(e3["origin"] == ids[0]);
  CHECK(e3["deferred"] == "1796176350912");
  CHECK(e3["attempt"] == "2");
  CHECK(e3["paused"] == "1");

  // The stream entry parser hands the engine attempt, paused and origin.
  queue::request range;
  range.command("XRANGE", k.recipients("c"), third[0], third[0]);
  auto r = f.exec(range);
  queue::for_each_entry_in(r[0].get(), [&](const queue::stream_entry& se) {
    CHECK(se.attempt == 2);
    CHECK(se.paused == 1);
    CHECK(se.deferred_ms == 1796176350912);
    CHECK(se.origin == ids[0]);
    CHECK(se.well_formed);
  });

  // Sent at last: counted, the campaign is not done while a retry still waits.
  auto done = f.record({{third[0], queue::final_state::sent, "M0", "", false, 3, "250 ok", std::nullopt, 0}});
  CHECK(counted(done[0].get()) == std::vector<std::int64_t>{1});
  CHECK(queue::as_integer(done[0]->element[1]) == 0);
  CHECK(f.integer({"HGET", k.counts("c"), "sent"}) == 1);
}

TEST_CASE("scripts: failed records write one dead letter each, and a requeue moves each back once") {
  script_fixture f;
  auto ids = f.campaign(3);
  REQUIRE(ids.size() == 3);
  // An entry deleted by hand cannot be retried: recorded failed (2), with a dead letter.
  queue::request del;
  del.command("XDEL", k.recipients("c"), ids[2]);
  f.exec(del);
  std::vector<queue::outcome_record> recs{
      {ids[0], queue::final_state::failed, "M0", "550 no such user", false, 1, "550 no such user", std::nullopt, 0},
      {ids[1], queue::final_state::sent, "M1", "", false, 1, "250 ok", std::nullopt, 0},
      {ids[2], std::nullopt, "M2", "451 later", false, 1, "451 later", 0, 0}};
  auto r = f.record(recs);
  CHECK(counted(r[0].get()) == std::vector<std::int64_t>{1, 1, 2});
  CHECK(queue::as_integer(r[0]->element[1]) == 1);  // every recipient has a final state: done
  CHECK(f.record(recs)[0]->element[2]->elements == 3);
  CHECK(f.integer({"XLEN", k.dead("c")}) == 2);  // the replay wrote none
  CHECK(f.integer({"HGET", k.counts("c"), "failed"}) == 2);
  CHECK(f.integer({"ZCARD", k.retry("c")}) == 0);
  auto dead = stream_records(f.redis, k.dead("c"));
  REQUIRE(dead.size() == 2);
  CHECK(dead[0].fields["to"] == "m0@x.example");
  CHECK(dead[0].fields["data"] == "{\"n\":0}");
  CHECK(dead[0].fields["member"] == "M0");
  CHECK(dead[0].fields["channel"] == "email");
  CHECK(dead[0].fields["reply"] == "550 no such user");
  CHECK(dead[0].fields["attempts"] == "1");
  CHECK(dead[1].fields["reason"].find("no longer in the stream") != std::string::npos);
  CHECK(dead[1].fields["reason"].find("451 later") != std::string::npos);

  auto requeue = [&](const std::vector<std::string>& letters) {
    queue::request req;
    queue::append_requeue_dead(req, k, "c", letters);
    return f.exec(req);
  };
  auto q = requeue({dead[0].id, dead[0].id});
  REQUIRE(q[0]->type == REDIS_REPLY_ARRAY);
  CHECK(queue::as_integer(q[0]->element[0]) == 1);  // named twice, requeued once
  CHECK(queue::as_string(q[0]->element[1]) == "active");
  CHECK(f.integer({"HGET", k.counts("c"), "failed"}) == 1);
  CHECK(f.integer({"HGET", k.counts("c"), "requeued"}) == 1);
  CHECK(f.integer({"HEXISTS", k.campaign("c"), "finished_at"}) == 0);
  auto back = f.read_new();
  REQUIRE(back.size() == 1);
  auto entries = stream_records(f.redis, k.recipients("c"));
  auto& e = entries.back().fields;
  CHECK(e["to"] == "m0@x.example");
  CHECK(e["id"] == "M0");
  CHECK(e["origin"] == ids[0]);
  CHECK(e.count("attempt") == 0);  // attempts start over
  CHECK(queue::as_integer(requeue({dead[0].id})[0]->element[0]) == 0);

  queue::request cancel;
  cancel.command("HSET", k.campaign("c"), "state", "cancelled");
  f.exec(cancel);
  auto refused = requeue({dead[1].id});
  CHECK(queue::is_error(refused[0].get()));
  CHECK(f.integer({"XLEN", k.dead("c")}) == 1);
}

TEST_CASE("scripts: a release only clears the in-flight mark") {
  script_fixture f;
  auto ids = f.campaign(1);
  queue::request mark;
  mark.command("HSET", k.inflight("c"), ids[0], 1);
  f.exec(mark);
  auto r = f.record({{ids[0], std::nullopt, "M0", "", false, 0, "", std::nullopt, 0}});
  CHECK(counted(r[0].get()) == std::vector<std::int64_t>{0});
  CHECK(f.integer({"HLEN", k.inflight("c")}) == 0);
  CHECK(f.integer({"XLEN", k.dead("c")}) == 0);
  CHECK(f.integer({"ZCARD", k.retry("c")}) == 0);
}

TEST_CASE("scripts: work_left sees an entry wherever it is: unread in the stream, pending, waiting for its retry") {
  script_fixture f;
  auto left = [&] {
    queue::request req;
    queue::append_work_left(req, k, "c");
    auto replies = f.exec(req);
    auto w = queue::parse_work_left(replies[0].get());
    REQUIRE(w);
    return *w;
  };
  // A stream and group that do not exist: nothing left (a campaign deleted by hand).
  CHECK_FALSE(left().any());
  auto ids = f.campaign(2);  // both read by consumer x
  auto w = left();
  CHECK(w.pending == 2);
  CHECK_FALSE(w.unread);
  // One deferred: out of the pending list into the retry set.
  queue::outcome_record retry, sent;
  retry.entry_id = ids[0];
  retry.member = "M0";
  retry.attempts = 1;
  retry.reply = "451 4.3.0 later";
  retry.retry_in_ms = 0;  // due at once
  sent.entry_id = ids[1];
  sent.state = queue::final_state::sent;
  sent.member = "M1";
  sent.attempts = 1;
  f.record({retry, sent});
  w = left();
  CHECK(w.pending == 0);
  CHECK(w.retries == 1);
  CHECK_FALSE(w.unread);
  // Moved back into the stream as a new entry nobody has read: this is what three separate reads
  // could miss (it was in the retry set a moment ago, and is not pending yet).
  queue::request move;
  queue::append_move_due_retries(move, k, "c", 10);
  f.exec(move);
  w = left();
  CHECK(w.pending == 0);
  CHECK(w.retries == 0);
  CHECK(w.unread);
  CHECK(w.any());
  CHECK(f.read_new().size() == 1);
  w = left();
  CHECK(w.pending == 1);
  CHECK_FALSE(w.unread);
}
