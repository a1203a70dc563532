// The messenger (curl multi on Asio) against the project's SMS sink, both on one io_context.
#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <unistd.h>

#include "testpeers/sms_sink.hpp"
#include "adapters/sms_http/messenger.hpp"
#include "support/process.hpp"

using namespace budstikke;
using namespace budstikke::adapters;
using namespace std::chrono_literals;

namespace {

struct listener final : delivery_listener {
  bool inside_push = false;
  bool called_inside_push = false;
  std::size_t delivered = 0;
  std::array<std::size_t, adapters::outcome_count> by_outcome{};
  std::set<const delivery*> seen;
  bool twice = false;
  void on_delivered(delivery& d) override {
    called_inside_push = called_inside_push || inside_push;
    twice = twice || !seen.insert(&d).second;
    ++delivered;
    ++by_outcome[static_cast<std::size_t>(d.result)];
  }
  std::size_t count(outcome o) const { return by_outcome[static_cast<std::size_t>(o)]; }
};

std::vector<delivery> make_sms(std::size_t n, bool ucs2 = false) {
  std::vector<delivery> ds(n);
  for (std::size_t i = 0; i < n; ++i) {
    ds[i].envelope_to = "+479" + std::to_string(1000000 + i);
    ds[i].envelope_from = "Forbundet";
    ds[i].data = ucs2 ? "Привет " + std::to_string(i) : "Hei Åse, melding " + std::to_string(i);
    ds[i].sms_ucs2 = ucs2;
    ds[i].slot = static_cast<std::uint32_t>(i);
  }
  return ds;
}

sms_http::gateway_config config_for(const testpeers::sms_sink& s, sms_http::gateway_kind kind) {
  sms_http::gateway_config c;
  c.kind = kind;
  c.url = "http://127.0.0.1:" + std::to_string(s.port()) + (kind == sms_http::gateway_kind::kannel ? "/cgi-bin/sendsms" : "/v1/sms");
  c.method = kind == sms_http::gateway_kind::kannel ? sms_http::http_method::get : sms_http::http_method::post;
  c.id_path = kind == sms_http::gateway_kind::json ? "messages.0.id" : "";
  c.concurrency = 4;
  c.request_timeout = 5s;
  return c;
}

// Pushes every delivery and runs until each has been reported (or 20 s have passed).
void send_all(boost::asio::io_context& io, sms_http::sms_messenger& m, listener& l, std::vector<delivery>& ds) {
  const std::size_t target = l.delivered + ds.size();
  l.inside_push = true;
  for (auto& d : ds) m.push(d);
  l.inside_push = false;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (l.delivered < target && std::chrono::steady_clock::now() < deadline) io.run_one_for(100ms);
  REQUIRE(l.delivered == target);
}

}  // namespace

TEST_CASE("sms messenger: Kannel kind over keep-alive connections, every message once") {
  boost::asio::io_context io;
  testpeers::sms_sink_options so;
  so.username = "budstikke";
  so.password = "hemmelig";
  testpeers::sms_sink s(io.get_executor(), so);
  auto cfg = config_for(s, sms_http::gateway_kind::kannel);
  cfg.username = "budstikke";
  cfg.password = "hemmelig";
  listener l;
  auto m = sms_http::make_sms_messenger(io.get_executor(), cfg, l);
  auto ds = make_sms(300);
  send_all(io, *m, l, ds);
  CHECK_FALSE(l.called_inside_push);
  CHECK_FALSE(l.twice);
  CHECK(l.count(outcome::accepted) == 300);
  CHECK(ds[7].reply == "202 0: Accepted for delivery");
  auto st = s.statistics();
  CHECK(st.accepted == 300);
  CHECK(st.connections <= 4);  // concurrency, kept alive
  CHECK(m->statistics().requests == 300);
}

TEST_CASE("sms messenger: Kannel kind with POST (text body, X-Kannel headers)") {
  boost::asio::io_context io;
  testpeers::sms_sink_options so;
  so.username = "budstikke";
  so.password = "hemmelig";
  so.store = (std::filesystem::temp_directory_path() / ("sms-post-" + std::to_string(::getpid()) + ".jsonl")).string();
  std::filesystem::remove(*so.store);
  testpeers::sms_sink s(io.get_executor(), so);
  auto cfg = config_for(s, sms_http::gateway_kind::kannel);
  cfg.method = sms_http::http_method::post;
  cfg.username = "budstikke";
  cfg.password = "hemmelig";
  listener l;
  auto m = sms_http::make_sms_messenger(io.get_executor(), cfg, l);
  auto ds = make_sms(20, true);
  send_all(io, *m, l, ds);
  CHECK(l.count(outcome::accepted) == 20);
  CHECK(s.statistics().ucs2 == 20);
  std::ifstream in(*so.store);
  std::string first;
  std::getline(in, first);
  CHECK(first.find(R"("to":"+4791000000","from":"Forbundet","text":"Привет 0")") != std::string::npos);
  std::filesystem::remove(*so.store);
}

TEST_CASE("sms messenger: wrong Kannel credentials are permanent") {
  boost::asio::io_context io;
  testpeers::sms_sink_options so;
  so.username = "budstikke";
  so.password = "hemmelig";
  testpeers::sms_sink s(io.get_executor(), so);
  auto cfg = config_for(s, sms_http::gateway_kind::kannel);
  cfg.username = "budstikke";
  cfg.password = "feil";
  listener l;
  auto m = sms_http::make_sms_messenger(io.get_executor(), cfg, l);
  auto ds = make_sms(3);
  send_all(io, *m, l, ds);
  CHECK(l.count(outcome::permanent) == 3);
  CHECK(ds[0].reply == "403 Authorization failed for sendsms");
}

TEST_CASE("sms messenger: JSON kind with POST, UCS-2 and the provider id in the reply") {
  boost::asio::io_context io;
  testpeers::sms_sink_options so;
  so.kind = testpeers::sms_sink_kind::json;
  so.bearer_token = "tok";
  testpeers::sms_sink s(io.get_executor(), so);
  auto cfg = config_for(s, sms_http::gateway_kind::json);
  cfg.bearer_token = "tok";
  listener l;
  auto m = sms_http::make_sms_messenger(io.get_executor(), cfg, l);
  auto ds = make_sms(50, true);
  send_all(io, *m, l, ds);
  CHECK(l.count(outcome::accepted) == 50);
  CHECK(ds[0].reply.rfind("200 id=sink-", 0) == 0);
  CHECK(s.statistics().ucs2 == 50);
}

TEST_CASE("sms messenger: 429 with Retry-After pauses the gateway, no request during the pause") {
  boost::asio::io_context io;
  testpeers::sms_sink_options so;
  so.throttle_share = 1.0;
  so.retry_after = 2s;
  testpeers::sms_sink s(io.get_executor(), so);
  auto cfg = config_for(s, sms_http::gateway_kind::kannel);
  listener l;
  auto m = sms_http::make_sms_messenger(io.get_executor(), cfg, l);
  auto first = make_sms(1);
  send_all(io, *m, l, first);
  CHECK(first[0].result == outcome::transient);
  CHECK(first[0].retry_after == 2000ms);
  // Pushed during the pause: they wait, unsent, and come back with the rest of the pause when
  // the messenger is closed before it ends.
  auto more = make_sms(20);
  l.inside_push = true;
  for (auto& d : more) m->push(d);
  l.inside_push = false;
  auto until = std::chrono::steady_clock::now() + 500ms;
  while (std::chrono::steady_clock::now() < until) io.run_one_for(50ms);
  CHECK(l.delivered == 1);
  CHECK(s.statistics().requests == 1);
  m->close();
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (l.delivered < 21 && std::chrono::steady_clock::now() < deadline) io.run_one_for(50ms);
  REQUIRE(l.delivered == 21);
  CHECK(l.count(outcome::transient) == 21);
  for (auto& d : more) {
    CHECK(d.retry_after > 1000ms);
    CHECK(d.retry_after <= 1500ms);
  }
  CHECK(m->statistics().paused == 20);
  CHECK(s.statistics().requests == 1);
  CHECK(s.statistics().in_backoff == 0);
  CHECK_FALSE(l.called_inside_push);
}

TEST_CASE("sms messenger: what waits during a pause goes out when it ends") {
  boost::asio::io_context io;
  testpeers::sms_sink_options so;
  so.throttle_share = 0.5;
  so.retry_after = 1s;
  so.seed = 2;
  testpeers::sms_sink s(io.get_executor(), so);
  auto cfg = config_for(s, sms_http::gateway_kind::kannel);
  listener l;
  auto m = sms_http::make_sms_messenger(io.get_executor(), cfg, l);
  auto ds = make_sms(30);
  send_all(io, *m, l, ds);
  // Each 429 pauses: the rest waited, none was refused for being sent inside a pause.
  CHECK(l.count(outcome::transient) == s.statistics().throttled);
  CHECK(l.count(outcome::accepted) == s.statistics().accepted);
  CHECK(s.statistics().in_backoff == 0);
  for (auto& d : ds)
    if (d.result == outcome::transient) CHECK(d.retry_after == 1000ms);
}

TEST_CASE("sms messenger: a 500 is transient, a dropped connection after the request ambiguous") {
  boost::asio::io_context io;
  testpeers::sms_sink_options so;
  so.error_share = 0.3;
  so.drop_share = 0.2;
  so.seed = 5;
  testpeers::sms_sink s(io.get_executor(), so);
  auto cfg = config_for(s, sms_http::gateway_kind::kannel);
  listener l;
  auto m = sms_http::make_sms_messenger(io.get_executor(), cfg, l);
  auto ds = make_sms(200);
  send_all(io, *m, l, ds);
  auto st = s.statistics();
  for (auto& d : ds)
    if (d.result == outcome::transient && d.reply.rfind("500", 0) != 0) FAIL_CHECK(d.reply);
  CHECK(l.count(outcome::accepted) == st.accepted);
  CHECK(l.count(outcome::transient) == st.errors);
  CHECK(l.count(outcome::ambiguous) == st.dropped);
  CHECK(st.dropped > 0);
  CHECK(st.errors > 0);
  CHECK_FALSE(l.twice);
}

TEST_CASE("sms messenger: an answer slower than the timeout is ambiguous") {
  boost::asio::io_context io;
  testpeers::sms_sink_options so;
  so.slow_share = 1.0;
  so.slow_delay = 2s;
  testpeers::sms_sink s(io.get_executor(), so);
  auto cfg = config_for(s, sms_http::gateway_kind::kannel);
  cfg.request_timeout = 300ms;
  listener l;
  auto m = sms_http::make_sms_messenger(io.get_executor(), cfg, l);
  auto ds = make_sms(4);
  send_all(io, *m, l, ds);
  CHECK(l.count(outcome::ambiguous) == 4);
  CHECK(ds[0].reply.rfind("local: no answer in time", 0) == 0);
}

TEST_CASE("sms messenger: a gateway nobody listens on: unsent, not charged") {
  boost::asio::io_context io;
  sms_http::gateway_config cfg;
  cfg.url = "http://127.0.0.1:" + std::to_string(budstikke::support::free_loopback_port()) + "/cgi-bin/sendsms";
  cfg.connect_timeout = 1s;
  listener l;
  auto m = sms_http::make_sms_messenger(io.get_executor(), cfg, l);
  auto ds = make_sms(3);
  send_all(io, *m, l, ds);
  CHECK(l.count(outcome::unsent) == 3);
  CHECK(ds[0].reply.rfind("local: cannot reach the gateway", 0) == 0);
}

TEST_CASE("sms messenger: close after the last answer closes every connection") {
  boost::asio::io_context io;
  testpeers::sms_sink s(io.get_executor(), {});
  auto cfg = config_for(s, sms_http::gateway_kind::kannel);
  listener l;
  auto m = sms_http::make_sms_messenger(io.get_executor(), cfg, l);
  auto ds = make_sms(10);
  l.inside_push = true;
  for (auto& d : ds) m->push(d);
  l.inside_push = false;
  m->close();
  bool closed = false;
  boost::asio::co_spawn(io, m->async_wait_closed(), [&](std::exception_ptr) { closed = true; });
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!closed && std::chrono::steady_clock::now() < deadline) io.run_one_for(100ms);
  REQUIRE(closed);
  CHECK(l.count(outcome::accepted) == 10);
}

// The owner may destroy the messenger the moment async_wait_closed() completes (budstikke send
// and a stopping shard do): nothing of it may still be queued. Under AddressSanitizer a handler
// left behind (the pump that close() posts, a pause's resume timer) is a use-after-free here.
TEST_CASE("sms messenger: destroyed as soon as it is closed, after an answer, a 429 pause or a drop") {
  struct fault {
    const char* name;
    double throttle_share, drop_share;
    outcome expected;
    std::size_t pushed_after;  // deliveries pushed after the answers, before close()
  };
  for (auto f : {fault{"closed after the last answer", 0, 0, outcome::accepted, 0},
                 fault{"closed during a 429 pause, with deliveries waiting", 1, 0, outcome::transient, 2},
                 fault{"closed after a dropped connection", 0, 1, outcome::ambiguous, 0}}) {
    DYNAMIC_SECTION(f.name) {
      boost::asio::io_context io;
      testpeers::sms_sink_options so;
      so.throttle_share = f.throttle_share;
      so.drop_share = f.drop_share;
      testpeers::sms_sink s(io.get_executor(), so);
      listener l;
      auto m = sms_http::make_sms_messenger(io.get_executor(), config_for(s, sms_http::gateway_kind::kannel), l);
      auto ds = make_sms(3);
      send_all(io, *m, l, ds);
      CHECK(ds[0].result == f.expected);
      auto more = make_sms(f.pushed_after);
      for (auto& d : more) m->push(d);
      // As `send` does: close, wait, destroy, in one coroutine. With nothing outstanding the
      // wait completes at once, while the pump that close() posted is still queued.
      bool closed = false;
      boost::asio::co_spawn(
          io,
          [&]() -> boost::asio::awaitable<void> {
            m->close();
            co_await m->async_wait_closed();
            m.reset();
          },
          [&](std::exception_ptr e) {
            CHECK_FALSE(e);
            closed = true;
          });
      auto deadline = std::chrono::steady_clock::now() + 10s;
      while (!closed && std::chrono::steady_clock::now() < deadline) io.run_one_for(100ms);
      REQUIRE(closed);
      CHECK(l.delivered == 3 + f.pushed_after);
      io.run_for(300ms);  // whatever the messenger left queued would run now
    }
  }
}
