// The Lua scripts as the library embeds them, and the EVALSHA calls and NOSCRIPT fallback as
// bytes, without a server (tests/queue/scripts_redis_test.cpp runs them on a real one).
#include <algorithm>
#include <filesystem>
#include <set>

#include <openssl/sha.h>

#include "queue/campaign_store.hpp"
#include "queue/consent.hpp"
#include "queue/resp.hpp"
#include "queue/script.hpp"
#include "tests/support/servers.hpp"

using namespace budstikke;
using namespace budstikke::testing;
using queue::request;

namespace {

std::string sha1_hex(std::string_view bytes) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  std::string hex;
  for (unsigned char b : digest) {
    constexpr char digits[] = "0123456789abcdef";
    hex += digits[b >> 4];
    hex += digits[b & 15];
  }
  return hex;
}

// The replies as hiredis parses them from `wire`.
std::vector<queue::reply_ptr> replies_from(std::string_view wire) {
  queue::reply_parser p;
  REQUIRE(p.feed(wire.data(), wire.size()));
  std::vector<queue::reply_ptr> out;
  bool error = false;
  while (auto r = p.next(error)) out.push_back(std::move(r));
  REQUIRE_FALSE(error);
  return out;
}

std::string bulk(std::string_view s) { return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n"; }

constexpr std::string_view noscript = "-NOSCRIPT No matching script. Please use EVAL.\r\n";

}  // namespace

TEST_CASE("scripts: every file of queue/scripts is embedded byte for byte, with its SHA1") {
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(fs::path(source_dir()) / "queue" / "scripts"))
    if (e.path().extension() == ".lua") files.insert(e.path().stem().string());
  std::set<std::string> embedded;
  for (const queue::script* s : queue::all_scripts()) {
    INFO(s->name);
    embedded.insert(std::string(s->name));
    CHECK(s->source == slurp(fs::path(source_dir()) / "queue" / "scripts" / (std::string(s->name) + ".lua")));
    CHECK(s->sha1 == sha1_hex(s->source));
  }
  CHECK(embedded == files);  // a .lua file not listed in queue/CMakeLists.txt would be missing
  CHECK(embedded.size() == 8);
  CHECK(queue::record_outcomes_script.name == "record_outcomes");
  CHECK(queue::withdraw_consent_script.name == "withdraw_consent");
}

TEST_CASE("scripts: a script call is EVALSHA with the SHA1, numkeys, keys and arguments") {
  request req;
  req.command("SET", "a", 1);
  queue::append_withdraw_consent(req, queue::keys("p:"), "M1", "email:newsletter", "withdrawn|t|portal");
  const auto& sha1 = queue::withdraw_consent_script.sha1;
  CHECK(req.payload() == "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n"
                         "*6\r\n$7\r\nEVALSHA\r\n" + bulk(sha1) + "$1\r\n1\r\n" + bulk("p:consent:{M1}") +
                             bulk("email:newsletter") + bulk("withdrawn|t|portal"));
  REQUIRE(req.script_calls().size() == 1);
  CHECK(req.script_calls()[0].command == 1);
  CHECK(req.script_calls()[0].called == &queue::withdraw_consent_script);

  // Announced and written argument counts must agree, as for any command.
  request short_one;
  short_one.begin_eval(queue::transition_script, 1, 3).arg("k").arg("paused");
  CHECK_THROWS_AS(short_one.payload(), std::logic_error);
}

TEST_CASE("scripts: NOSCRIPT sends exactly the calls that did not run again, as EVAL, in their order") {
  request req;
  req.command("SET", "n", 0);                                                     // 0
  queue::append_withdraw_consent(req, queue::keys(), "M1", "email:*", "withdrawn|t|s");  // 1
  req.command("INCR", "n");                                                       // 2
  queue::append_move_due_retries(req, queue::keys(), "c", 10);                    // 3
  queue::append_withdraw_consent(req, queue::keys(), "M2", "sms:*", "withdrawn|t|s");    // 4
  req.command("GET", "n");                                                        // 5
  const auto eval_of_1 = "*6\r\n$4\r\nEVAL\r\n" + bulk(queue::withdraw_consent_script.source) + "$1\r\n1\r\n" +
                         bulk("budstikke:consent:{M1}") + bulk("email:*") + bulk("withdrawn|t|s");
  const auto eval_of_3 = "*7\r\n$4\r\nEVAL\r\n" + bulk(queue::move_due_retries_script.source) + "$1\r\n3\r\n" +
                         bulk("budstikke:campaign:{c}:retry") + bulk("budstikke:campaign:{c}:recipients") +
                         bulk("budstikke:campaign:{c}:counts") + bulk("10");
  const auto eval_of_4 = "*6\r\n$4\r\nEVAL\r\n" + bulk(queue::withdraw_consent_script.source) + "$1\r\n1\r\n" +
                         bulk("budstikke:consent:{M2}") + bulk("sms:*") + bulk("withdrawn|t|s");
  std::vector<std::size_t> positions;

  SECTION("every script call unknown") {
    auto replies = replies_from("+OK\r\n" + std::string(noscript) + ":1\r\n" + std::string(noscript) +
                                std::string(noscript) + "$1\r\n1\r\n");
    auto again = queue::resend_unknown_scripts(req, replies, positions);
    CHECK(positions == std::vector<std::size_t>{1, 3, 4});
    CHECK(again.commands() == 3);
    CHECK(again.payload() == eval_of_1 + eval_of_3 + eval_of_4);
    CHECK(again.script_calls().empty());  // EVAL is never answered NOSCRIPT
  }
  SECTION("one known, one refused for another reason") {
    auto replies = replies_from("+OK\r\n" + std::string(noscript) + ":1\r\n*2\r\n:0\r\n:0\r\n" +
                                "-ERR something else\r\n$1\r\n1\r\n");
    auto again = queue::resend_unknown_scripts(req, replies, positions);
    CHECK(positions == std::vector<std::size_t>{1});
    CHECK(again.payload() == eval_of_1);
  }
  SECTION("every script known") {
    auto replies = replies_from("+OK\r\n:1\r\n:1\r\n*2\r\n:0\r\n:0\r\n:0\r\n$1\r\n1\r\n");
    CHECK(queue::resend_unknown_scripts(req, replies, positions).empty());
    CHECK(positions.empty());
  }
}

TEST_CASE("scripts: a script call between MULTI and EXEC is refused") {
  request req;
  req.command("multi");
  CHECK_THROWS_AS(queue::append_withdraw_consent(req, queue::keys(), "M1", "email:*", "withdrawn|t|s"), std::logic_error);
  req.clear();
  req.command("MULTI").command("HSET", "k", "f", "v").command("EXEC");
  CHECK_NOTHROW(queue::append_withdraw_consent(req, queue::keys(), "M1", "email:*", "withdrawn|t|s"));
  CHECK(req.script_calls().size() == 1);
  CHECK(req.script_calls()[0].command == 3);
}
