// The admin server in-process: probes, metrics, the answers to wrong methods and oversized heads.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "admin/server.hpp"
#include "config/config.hpp"
#include "engine/metrics.hpp"
#include "testpeers/http_client.hpp"

using namespace budstikke;
using engine::metrics::registry;
using support::host_port;
using testpeers::http_get;

namespace {

// Writes `request` as is and returns everything the server sends until it closes.
std::string raw_exchange(std::uint16_t port, const std::string& request) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket s(ioc);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  boost::system::error_code ec;
  boost::asio::write(s, boost::asio::buffer(request), ec);
  std::string reply;
  char buf[4096];
  for (;;) {
    auto n = s.read_some(boost::asio::buffer(buf), ec);
    reply.append(buf, n);
    if (ec) break;
  }
  return reply;
}

}  // namespace

TEST_CASE("admin http: /metrics, /healthz, /readyz, 404 and 405") {
  registry reg;
  reg.expect_shards(1);
  admin::server server({"127.0.0.1", 0}, reg);
  host_port at{"127.0.0.1", server.port()};
  const auto t = std::chrono::seconds(5);

  auto health = http_get(at, "/healthz", t);
  REQUIRE(health);
  CHECK(health->status == 200);
  auto ready = http_get(at, "/readyz", t);
  REQUIRE(ready);
  CHECK(ready->status == 503);
  reg.shard(0).ready = true;
  ready = http_get(at, "/readyz", t);
  REQUIRE(ready);
  CHECK(ready->status == 200);
  auto m = http_get(at, "/metrics", t);
  REQUIRE(m);
  CHECK(m->status == 200);
  CHECK(m->content_type.find("version=0.0.4") != std::string::npos);
  CHECK(m->body.find("# TYPE budstikke_messages_total counter") != std::string::npos);
  auto missing = http_get(at, "/", t);
  REQUIRE(missing);
  CHECK(missing->status == 404);

  auto post = raw_exchange(server.port(), "POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(post.rfind("HTTP/1.1 405", 0) == 0);
  CHECK(post.find("Allow: GET") != std::string::npos);
  // Still serving.
  CHECK(http_get(at, "/healthz", t));
}

TEST_CASE("admin http: too large requests are answered 431 and 413, malformed ones 400") {
  registry reg;
  admin::server server({"127.0.0.1", 0}, reg);
  auto huge = raw_exchange(server.port(), "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(20000, 'a') + "\r\n\r\n");
  CHECK(huge.rfind("HTTP/1.1 431 ", 0) == 0);
  auto body = raw_exchange(server.port(), "POST /unsubscribe?t=x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" +
                                              std::string(5000, 'a'));
  CHECK(body.rfind("HTTP/1.1 413 ", 0) == 0);
  auto bad = raw_exchange(server.port(), "GET /healthz HTTP/1.1\r\nHost x\r\n\r\n");
  CHECK(bad.rfind("HTTP/1.1 400 ", 0) == 0);
  CHECK(http_get({"127.0.0.1", server.port()}, "/healthz", std::chrono::seconds(5)));
}

namespace {

using steady = std::chrono::steady_clock;

// Clients that hold connections to the admin port without ever finishing a request: `idle` ones
// send nothing, the others a byte a second. A connection the server closes is opened again at
// once, so the load never lets up. Runs on its own thread; records how long the server let any
// connection live.
class hostile_clients {
 public:
  hostile_clients(std::uint16_t port, int idle, int slow) : port_(port) {
    for (int i = 0; i < idle + slow; ++i) open(i >= idle);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~hostile_clients() {
    boost::asio::post(ioc_, [this] { stopping_ = true; for (auto& c : conns_) { boost::system::error_code ec; c->socket.close(ec); c->timer.cancel(); } });
    thread_.join();
  }
  std::chrono::milliseconds longest_life() const { return std::chrono::milliseconds(longest_ms_.load()); }
  int opened() const { return opened_.load(); }

 private:
  struct conn {
    explicit conn(boost::asio::io_context& ioc) : socket(ioc), timer(ioc) {}
    boost::asio::ip::tcp::socket socket;
    boost::asio::steady_timer timer;
    steady::time_point since;
    bool slow = false;
    std::size_t sent = 0;
    char byte = 0;
  };

  void open(bool slow) {
    auto c = std::make_shared<conn>(ioc_);
    conns_.push_back(c);
    c->slow = slow;
    start(c);
  }

  void start(const std::shared_ptr<conn>& c) {
    if (stopping_) return;
    boost::system::error_code ec;
    c->socket.close(ec);
    c->socket = boost::asio::ip::tcp::socket(ioc_);
    c->sent = 0;
    c->socket.async_connect({boost::asio::ip::make_address("127.0.0.1"), port_}, [this, c](boost::system::error_code ec) {
      if (stopping_) return;
      if (ec) return retry_later(c);
      ++opened_;
      c->since = steady::now();
      // Whatever the server says (a 503, a close), read until it closes.
      c->socket.async_read_some(boost::asio::buffer(&c->byte, 1), [this, c](boost::system::error_code, std::size_t) { closed(c); });
      if (c->slow) drip(c);
    });
  }

  void drip(const std::shared_ptr<conn>& c) {
    static const std::string head = "GET /healthz HTTP/1.1\r\nHost: admin\r\nX-Slow: " + std::string(200, 'z') + "\r\n\r\n";
    c->timer.expires_after(std::chrono::seconds(1));
    c->timer.async_wait([this, c](boost::system::error_code ec) {
      if (ec || stopping_ || !c->socket.is_open()) return;
      boost::asio::async_write(c->socket, boost::asio::buffer(head.data() + c->sent % head.size(), 1),
                               [this, c](boost::system::error_code ec, std::size_t) {
                                 if (ec) return;
                                 ++c->sent;
                                 drip(c);
                               });
    });
  }

  // The server's close (or its refusal): note how long it took, and come back.
  void closed(const std::shared_ptr<conn>& c) {
    if (stopping_) return;
    auto lived = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - c->since).count();
    if (lived > longest_ms_) longest_ms_ = lived;
    c->timer.cancel();
    start(c);
  }

  void retry_later(const std::shared_ptr<conn>& c) {
    c->timer.expires_after(std::chrono::milliseconds(50));
    c->timer.async_wait([this, c](boost::system::error_code ec) {
      if (!ec) start(c);
    });
  }

  std::uint16_t port_;
  boost::asio::io_context ioc_;
  std::vector<std::shared_ptr<conn>> conns_;
  bool stopping_ = false;
  std::atomic<long> longest_ms_{0};
  std::atomic<int> opened_{0};
  std::thread thread_;
};

}  // namespace

TEST_CASE("admin http: 300 idle and slow connections held for 20 s do not stop /healthz from answering within 1 s") {
  registry reg;
  reg.expect_shards(1);
  reg.shard(0).ready = true;
  admin::server server({"127.0.0.1", 0}, reg);  // the defaults: 512 connections, a 2 s head timeout
  host_port at{"127.0.0.1", server.port()};
  const auto seconds = std::getenv("BUDSTIKKE_LONG_TESTS") ? 60 : 20;
  std::chrono::milliseconds slowest{0};
  int answered = 0;
  {
    hostile_clients flood(server.port(), 150, 150);
    for (int i = 0; i < seconds; ++i) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      auto start = steady::now();
      auto r = http_get(at, i % 2 ? "/healthz" : "/readyz", std::chrono::seconds(1));
      auto took = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start);
      slowest = std::max(slowest, took);
      if (r && r->status == 200) ++answered;
    }
    // The server let no client hold a connection much beyond the 2 s head timeout: the slots
    // came back, so the clients had to connect again and again.
    CHECK(flood.longest_life() < std::chrono::milliseconds(3500));
    CHECK(flood.opened() > 300 * (seconds / 3));
    WARN("longest connection " << flood.longest_life().count() << " ms, " << flood.opened() << " connections opened");
  }
  WARN("slowest probe " << slowest.count() << " ms");
  CHECK(answered == seconds);
  CHECK(slowest < std::chrono::seconds(1));
}

TEST_CASE("admin http: beyond the limit probes still answer in reserved slots, then a quick 503; a probe listener is never starved") {
  registry reg;
  admin::server_limits limits{.max_connections = 10, .head_timeout = std::chrono::seconds(30)};
  admin::server server({{{"127.0.0.1", 0}, admin::serves_all}, {{"127.0.0.1", 0}, admin::serves_probes}}, reg, nullptr,
                       limits);
  boost::asio::io_context ioc;
  std::vector<boost::asio::ip::tcp::socket> held;
  auto hold = [&](int n) {
    for (int i = 0; i < n; ++i) {
      held.emplace_back(ioc);
      held.back().connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the server accepts them
  };
  hold(10);  // every ordinary slot
  const auto t = std::chrono::seconds(5);
  host_port at{"127.0.0.1", server.port()};
  // A reserved slot reads a probe and nothing else.
  auto probe = http_get(at, "/healthz", t);
  REQUIRE(probe);
  CHECK(probe->status == 200);
  auto metrics = http_get(at, "/metrics", t);
  REQUIRE(metrics);
  CHECK(metrics->status == 503);
  // Idle connections in the reserved slots are dropped after half a second.
  hold(8);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  probe = http_get(at, "/healthz", t);
  REQUIRE(probe);
  CHECK(probe->status == 200);

  // With the reserved slots held by connections that keep coming back, beyond them: 503 at once,
  // before the client has sent anything.
  hostile_clients flood(server.port(), 40, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // (Now and then a reserved slot comes free just as this one connects: then it waits there
  // for a head it never gets. Most tries see the 503.)
  int refused = 0;
  for (int i = 0; i < 10; ++i) {
    auto start = steady::now();
    auto answer = raw_exchange(server.port(), "");
    if (answer.rfind("HTTP/1.1 503 ", 0) == 0 && steady::now() - start < std::chrono::milliseconds(400)) ++refused;
  }
  CHECK(refused >= 7);

  // The probe listener has its own slots, and serves only the probes.
  host_port probes{"127.0.0.1", server.port(1)};
  for (int i = 0; i < 5; ++i) {
    auto r = http_get(probes, "/readyz", t);
    REQUIRE(r);
    CHECK(r->status == 503);  // not ready: no shard yet, but answered
    auto h = http_get(probes, "/healthz", t);
    REQUIRE(h);
    CHECK(h->status == 200);
  }
  auto hidden = http_get(probes, "/metrics", t);
  REQUIRE(hidden);
  CHECK(hidden->status == 404);
}

TEST_CASE("admin http: a listener for /unsubscribe alone does not expose /metrics, and the admin listener stops serving it") {
  budstikke::engine_config e;
  e.admin_listen = "127.0.0.1:0";
  e.unsubscribe_listen = "127.0.0.1:0";
  e.probe_listen = "127.0.0.1:0";
  auto listeners = admin::listeners_of(e);
  REQUIRE(listeners.size() == 3);
  CHECK(listeners[0].serves == (admin::serves_probes | admin::serves_metrics));
  CHECK(listeners[1].serves == admin::serves_probes);
  CHECK(listeners[2].serves == admin::serves_unsubscribe);

  registry reg;
  admin::server server(listeners, reg);
  const auto t = std::chrono::seconds(5);
  host_port pub{"127.0.0.1", server.port(2)}, adm{"127.0.0.1", server.port(0)};
  auto m = http_get(pub, "/metrics", t);
  REQUIRE(m);
  CHECK(m->status == 404);
  auto h = http_get(pub, "/healthz", t);
  REQUIRE(h);
  CHECK(h->status == 404);
  auto u = testpeers::http_request(pub, "POST", "/unsubscribe?t=x", "", t);
  REQUIRE(u);
  CHECK(u->status == 404);  // no secret configured here: not enabled
  CHECK(u->body.find("not enabled") != std::string::npos);
  auto on_admin = testpeers::http_request(adm, "POST", "/unsubscribe?t=x", "", t);
  REQUIRE(on_admin);
  CHECK(on_admin->status == 404);
  CHECK(on_admin->body == "not found\n");
  CHECK(http_get(adm, "/metrics", t)->status == 200);

  e.unsubscribe_listen.clear();
  e.probe_listen.clear();
  listeners = admin::listeners_of(e);
  REQUIRE(listeners.size() == 1);
  CHECK(listeners[0].serves == admin::serves_all);
  e.admin_listen.clear();
  CHECK(admin::listeners_of(e).empty());
}
