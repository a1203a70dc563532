// The typed answers the engine and the CLI see instead of reply trees: each from the RESP Redis
// sends, and each turning a reply of the wrong shape into an error or an empty result.
#include <catch2/catch.hpp>

#include <string>

#include "queue/consumer.hpp"
#include "queue/dead_letters.hpp"
#include "queue/resp.hpp"

using namespace budstikke::queue;

namespace {

reply_ptr parse_one(std::string_view bytes) {
  reply_parser p;
  REQUIRE(p.feed(bytes.data(), bytes.size()));
  bool err = false;
  auto r = p.next(err);
  REQUIRE_FALSE(err);
  REQUIRE(r);
  return r;
}

std::string bulk(std::string_view s) { return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n"; }

const auto wrong_type = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

}  // namespace

TEST_CASE("typed replies: XPENDING pages and the in-flight marks of claimed entries") {
  auto page = parse_one("*2\r\n*4\r\n" + bulk("1-0") + bulk("host-0") + ":1200\r\n:3\r\n*4\r\n" + bulk("2-0") +
                        bulk("host-0") + ":900\r\n:1\r\n");
  auto pending = parse_pending_of(page.get());
  REQUIRE(pending);
  REQUIRE(pending->size() == 2);
  CHECK((*pending)[0].id == "1-0");
  CHECK((*pending)[0].deliveries == 3);
  CHECK((*pending)[1].deliveries == 1);
  CHECK(parse_pending_of(parse_one("*0\r\n").get())->empty());
  CHECK_FALSE(parse_pending_of(parse_one(wrong_type).get()));
  CHECK(error_of(parse_one(wrong_type).get())->rfind("WRONGTYPE", 0) == 0);

  auto marks = parse_marks(parse_one("*3\r\n" + bulk("1733000000000") + "$-1\r\n" + bulk("1733000000001")).get(), 3);
  CHECK(marks == std::vector<bool>{true, false, true});
  CHECK(parse_marks(parse_one(wrong_type).get(), 2) == std::vector<bool>{false, false});
}

TEST_CASE("typed replies: work left, consumers and their liveness") {
  auto left = parse_work_left(parse_one("*3\r\n:7\r\n:2\r\n:0\r\n").get());
  REQUIRE(left);
  CHECK(left->pending == 7);
  CHECK(left->retries == 2);
  CHECK_FALSE(left->unread);
  CHECK(left->any());
  auto unread = parse_work_left(parse_one("*3\r\n:0\r\n:0\r\n:1\r\n").get());
  REQUIRE(unread);
  CHECK(unread->unread);
  CHECK(unread->any());
  CHECK_FALSE(parse_work_left(parse_one("*3\r\n:0\r\n:0\r\n:0\r\n").get())->any());
  // An error (the script refused) or a reply of another shape: not known, never "nothing left".
  CHECK_FALSE(parse_work_left(parse_one("-NOPERM this user has no permissions\r\n").get()));
  CHECK_FALSE(parse_work_left(parse_one(":0\r\n").get()));

  auto consumers = parse_consumers(parse_one("*2\r\n*6\r\n" + bulk("name") + bulk("host-0") + bulk("pending") +
                                             ":4\r\n" + bulk("idle") + ":10\r\n*4\r\n" + bulk("name") + bulk("host-1") +
                                             bulk("pending") + ":0\r\n").get());
  REQUIRE(consumers.size() == 2);
  CHECK(consumers[0].name == "host-0");
  CHECK(consumers[0].pending == 4);
  CHECK(consumers[1].pending == 0);
  CHECK(parse_consumers(parse_one(wrong_type).get()).empty());
  CHECK_FALSE(parse_alive(parse_one(":0\r\n").get()));
  CHECK(parse_alive(parse_one(":1\r\n").get()));
  CHECK(parse_alive(parse_one(wrong_type).get()));  // unreadable: nobody is declared dead
}

TEST_CASE("typed replies: the registry, a campaign's hash and state") {
  auto ids = parse_ids(parse_one("*2\r\n" + bulk("a") + bulk("b")).get());
  REQUIRE(ids);
  CHECK(*ids == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(parse_ids(parse_one(wrong_type).get()));
  auto def = parse_campaign(parse_one("*6\r\n" + bulk("channel") + bulk("sms") + bulk("priority") + bulk("9") +
                                      bulk("state") + bulk("paused")).get(), "c1");
  REQUIRE(def.has_value());
  CHECK(def->kind == channel::sms);
  CHECK(def->priority == 9);
  CHECK(def->state == "paused");
  auto bad = parse_campaign(parse_one("*2\r\n" + bulk("priority") + bulk("eleven")).get(), "c1");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message.find("priority") != std::string::npos);
  CHECK(parse_state(parse_one(bulk("active")).get()) == "active");
}

TEST_CASE("typed replies: recorded batches and moved retries") {
  auto result = parse_record_result(parse_one("*3\r\n:3\r\n:1\r\n*3\r\n:1\r\n:0\r\n:2\r\n").get(), 3);
  REQUIRE(result);
  CHECK(result->finished);
  CHECK(result->counted == std::vector<record_count>{record_count::counted, record_count::not_counted,
                                                     record_count::retry_failed});
  // One count per record, or the batch is not taken as recorded.
  CHECK_FALSE(parse_record_result(parse_one("*3\r\n:3\r\n:0\r\n*2\r\n:1\r\n:0\r\n").get(), 3));
  CHECK_FALSE(parse_record_result(parse_one("-ERR script failed\r\n").get(), 1));
  auto moved = parse_moved_retries(parse_one("*3\r\n:5\r\n:40\r\n:2\r\n").get());
  REQUIRE(moved);
  CHECK(moved->moved == 5);
  CHECK(moved->waiting == 40);
  CHECK(moved->malformed == 2);
  CHECK_FALSE(parse_moved_retries(parse_one(":5\r\n").get()));
}

TEST_CASE("typed replies: dead letters, a campaign's summary and a requeue") {
  auto letters = parse_dead_letters(parse_one("*2\r\n*2\r\n" + bulk("5-0") + "*4\r\n" + bulk("member") + bulk("M1") +
                                              bulk("reason") + bulk("550 no such user") + "*2\r\n" + bulk("bad") +
                                              bulk("not fields")).get());
  REQUIRE(letters);
  REQUIRE(letters->size() == 2);
  CHECK((*letters)[0].id == "5-0");
  CHECK((*letters)[0].get("reason") == "550 no such user");
  CHECK((*letters)[0].get("missing").empty());
  CHECK((*letters)[1].fields.empty());
  CHECK_FALSE(parse_dead_letters(parse_one(wrong_type).get()));

  auto summary = parse_campaign_summary(parse_one("*3\r\n" + bulk("c1") + bulk("done") + bulk("7")).get());
  CHECK(summary.exists);
  CHECK(summary.state == "done");
  CHECK(summary.priority == 7);
  CHECK_FALSE(parse_campaign_summary(parse_one("*3\r\n$-1\r\n$-1\r\n$-1\r\n").get()).exists);

  auto requeued = parse_requeued(parse_one("*2\r\n:12\r\n" + bulk("active")).get());
  REQUIRE(requeued);
  CHECK(requeued->count == 12);
  CHECK(requeued->state == "active");
  CHECK_FALSE(parse_requeued(parse_one("-ERR campaign is cancelled\r\n").get()));
}
