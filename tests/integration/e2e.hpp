// Shared steps of the end-to-end scenarios: write a recipient file, read `status --json`.
#pragma once

#include <map>
#include <regex>
#include <thread>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include "queue/redis.hpp"
#include "queue/schema.hpp"
#include "tests/support/servers.hpp"

namespace budstikke::testing {

// n members, to = "medlem<i>@avd<i%7>.example"; `bad` maps a line index to a replacement line.
inline fs::path write_members(const temp_dir& dir, int n, const std::map<int, std::string>& replace = {}) {
  auto path = dir / "members.jsonl";
  std::ofstream out(path);
  for (int i = 0; i < n; ++i) {
    if (auto it = replace.find(i); it != replace.end()) {
      out << it->second << "\n";
      continue;
    }
    out << "{\"to\":\"medlem" << i << "@avd" << i % 7 << ".example\",\"id\":\"M" << i
        << "\",\"name\":\"Åse Ødegård " << i << "\",\"branch\":\"Tromsø\",\"dues_paid\":" << (i % 3 ? "true" : "false")
        << ",\"items\":[\"Lønn\",\"Pensjon\"]}\n";
  }
  return path;
}

inline boost::json::object campaign_status(const temp_dir& dir, const fs::path& config, const std::string& id) {
  auto r = run_cli(dir, {"status", "--config", config.string(), "--campaign", id, "--json"});
  INFO(r.output);
  REQUIRE(r.code == 0);
  boost::system::error_code ec;
  auto v = boost::json::parse(r.output, ec);
  REQUIRE_FALSE(ec);
  REQUIRE(v.is_object());
  return v.as_object();
}

inline std::int64_t field(const boost::json::object& o, const char* name) {
  auto* v = o.if_contains(name);
  REQUIRE(v);
  REQUIRE(v->is_int64());
  return v->as_int64();
}

// Checks that the counts of a finished campaign add up to its total.
inline void require_adds_up(const boost::json::object& s, std::int64_t total) {
  CHECK(field(s, "total") == total);
  CHECK(field(s, "sent") + field(s, "failed") + field(s, "skipped") + field(s, "ambiguous") == total);
  CHECK(field(s, "pending") == 0);
  CHECK(s.at("state").as_string() == "done");
}

// recipients.log of the own sink: recipient address -> messages that arrived for it.
inline std::map<std::string, int> arrivals(const fs::path& maildir) {
  std::map<std::string, int> seen;
  std::ifstream in(maildir / "recipients.log");
  std::string line;
  while (std::getline(in, line)) {
    auto tab = line.find('\t');
    if (tab != std::string::npos) ++seen[line.substr(tab + 1)];
  }
  return seen;
}

// Every one of n recipients arrived, none twice (`seen`: address -> arrivals).
inline void require_each_once(const std::map<std::string, int>& seen, int n) {
  CHECK(seen.size() == static_cast<std::size_t>(n));
  int duplicates = 0;
  for (auto& [addr, count] : seen) duplicates += count > 1;
  CHECK(duplicates == 0);
}

// Runs `body(connection&)` (a coroutine) against the test's Redis, to write what a portal writes.
// Never co_await inside a Catch2 macro in `body`: it may evaluate its expression twice.
template <typename F>
void with_redis(const redis_server& redis, F body) {
  boost::asio::io_context ioc;
  queue::redis_config rc;
  rc.port = redis.port;
  std::exception_ptr error;
  boost::asio::co_spawn(
      ioc,
      [&]() -> boost::asio::awaitable<void> {
        queue::connection conn(co_await boost::asio::this_coro::executor, rc);
        co_await body(conn);
      },
      [&](std::exception_ptr e) { error = e; });
  ioc.run();
  if (error) std::rethrow_exception(error);
}


// Sends one command and hands its reply to `read`.
template <typename Read>
void redis_reply(const redis_server& redis, const std::vector<std::string>& args, Read read) {
  with_redis(redis, [&](queue::connection& conn) -> boost::asio::awaitable<void> {
    queue::request req;
    req.begin(args.size());
    for (const auto& a : args) req.arg(a);
    std::vector<queue::reply_ptr> replies;
    auto ec = co_await conn.async_exec(req, replies);
    REQUIRE_FALSE(ec);
    read(replies[0].get());
  });
}

// One command's integer reply (-1 when the reply is not an integer).
inline std::int64_t redis_integer(const redis_server& redis, const std::vector<std::string>& args) {
  std::int64_t out = -1;
  redis_reply(redis, args, [&](const redisReply* r) { out = queue::as_integer(r).value_or(-1); });
  return out;
}

// One command's reply as text (INFO, CLIENT LIST, ...).
inline std::string redis_text(const redis_server& redis, const std::vector<std::string>& args) {
  std::string out;
  redis_reply(redis, args, [&](const redisReply* r) { out = queue::as_string(r); });
  return out;
}

// Every entry of a stream: its id and fields.
struct stream_record {
  std::string id;
  std::map<std::string, std::string> fields;
};
inline std::vector<stream_record> stream_records(const redis_server& redis, const std::string& key) {
  std::vector<stream_record> out;
  with_redis(redis, [&](queue::connection& conn) -> boost::asio::awaitable<void> {
    queue::request req;
    req.command("XRANGE", key, "-", "+");
    std::vector<queue::reply_ptr> replies;
    auto ec = co_await conn.async_exec(req, replies);
    REQUIRE_FALSE(ec);
    const redisReply* r = replies[0].get();
    REQUIRE(r->type == REDIS_REPLY_ARRAY);
    for (std::size_t i = 0; i < r->elements; ++i) {
      stream_record rec;
      rec.id = queue::as_string(r->element[i]->element[0]);
      const redisReply* f = r->element[i]->element[1];
      for (std::size_t k = 0; k + 1 < f->elements; k += 2)
        rec.fields[std::string(queue::as_string(f->element[k]))] = queue::as_string(f->element[k + 1]);
      out.push_back(std::move(rec));
    }
  });
  return out;
}

// The campaign's outcomes stream: member id -> reason, for every recipient not sent.
inline std::map<std::string, std::string> outcome_reasons(const redis_server& redis, const std::string& campaign) {
  std::map<std::string, std::string> reasons;
  for (auto& rec : stream_records(redis, queue::keys().outcomes(campaign))) {
    auto member = rec.fields["member"];
    reasons[member.empty() ? "(none)" : member] = rec.fields["reason"];
  }
  return reasons;
}

// `budstikke enqueue` of the shared newsletter template set to the members in `members`.
inline void enqueue_newsletter(const temp_dir& dir, const fs::path& config, const std::string& id,
                               const fs::path& members, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"enqueue", "--config", config.string(), "--campaign", id, "--template",
                                source_dir() + "/deploy/templates/newsletter", "--recipients", members.string(),
                                "--from", "nyheter@forbundet.example"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = run_cli(dir, args);
  INFO(r.output);
  REQUIRE(r.code == 0);
}

// The token in the List-Unsubscribe header of the message delivered to `address` (the config's
// unsubscribe_url is https://min.forbundet.example/avmeld?t={token}).
inline std::string token_delivered_to(const fs::path& maildir, const std::string& address) {
  std::regex header(R"(List-Unsubscribe: <https://min\.forbundet\.example/avmeld\?t=([A-Za-z0-9_.-]+)>)");
  for (const auto& f : fs::directory_iterator(maildir / "new")) {
    auto text = slurp(f.path());
    if (text.find("<" + address + ">") == std::string::npos) continue;
    std::smatch m;
    REQUIRE(std::regex_search(text, m, header));
    return m[1];
  }
  FAIL("no message for " << address);
  return {};
}

// The port an engine logged for a listener ("admin listening", "unsubscribe listening",
// "probes listening"; the fixture's config says port 0).
inline std::uint16_t listener_port_from_log(const fs::path& log, const std::string& msg = "admin listening") {
  std::regex port_field("\"msg\":\"" + msg + "\".*\"port\":([0-9]+)");
  for (int i = 0; i < 100; ++i) {
    std::smatch m;
    auto text = slurp(log);
    if (std::regex_search(text, m, port_field)) return static_cast<std::uint16_t>(std::stoi(m[1]));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  FAIL("the engine did not log '" << msg << "': " << slurp(log));
  return 0;
}
inline std::uint16_t admin_port_from_log(const fs::path& log) { return listener_port_from_log(log); }

}  // namespace budstikke::testing
