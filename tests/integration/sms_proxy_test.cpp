// A proxy named in the engine's environment (http_proxy, ALL_PROXY) is nobody's choice: the
// gateway's requests carry its credentials and every number and text, so they go straight to the
// gateway, and nothing reaches the proxy.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "tests/integration/sms.hpp"

using namespace budstikke::testing;
namespace support = budstikke::support;

namespace {

// A listener on a loopback port that records whatever arrives and closes each connection.
class recording_listener {
 public:
  recording_listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~recording_listener() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::uint16_t port() const { return port_; }
  std::string received() {
    std::lock_guard lock(mutex_);
    return received_;
  }
  int connections() const { return connections_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      ++connections_;
      pollfd cp{c, POLLIN, 0};
      char buf[4096];
      // What a client sends first (a request line and headers) arrives within a second.
      if (::poll(&cp, 1, 1000) > 0) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n > 0) {
          std::lock_guard lock(mutex_);
          received_.append(buf, static_cast<std::size_t>(n));
        }
      }
      ::close(c);
    }
  }

  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
  std::mutex mutex_;
  std::string received_;
};

}  // namespace

TEST_CASE("e2e sms: a proxy from the environment sees nothing; the gateway gets every message") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto sink = start_sms_sink(dir, {"--auth", "budstikke:hemmelig"});
  recording_listener proxy;
  std::ofstream(dir / "sms-password") << "hemmelig\n";
  auto config = write_sms_config(dir, redis, "http://127.0.0.1:" + std::to_string(sink.port) + "/cgi-bin/sendsms",
                                 "    kind: kannel\n    username: budstikke\n    password_file: " +
                                     (dir / "sms-password").string() + "\n");
  constexpr int n = 20;
  enqueue_sms(dir, config, "proxied", write_sms_members(dir, n));

  const std::string proxy_url = "http://127.0.0.1:" + std::to_string(proxy.port());
  std::vector<std::string> argv{"/usr/bin/env",   "http_proxy=" + proxy_url, "https_proxy=" + proxy_url,
                                "ALL_PROXY=" + proxy_url, "NO_PROXY=",   "no_proxy=",
                                budstikke_bin(),  "run",                     "--config",
                                config.string(),  "--until-idle",            "--max-wait",
                                "10"};
  auto engine = support::child_process::spawn(argv, (dir / "engine.log").string());
  auto status = engine.wait_for(std::chrono::seconds(120));
  if (!status) engine.stop();
  INFO(slurp(dir / "engine.log"));
  REQUIRE(status);
  CHECK(status->code == 0);  // 3: it gave up on a gateway that the proxy stood in for

  CHECK(proxy.connections() == 0);
  CHECK(proxy.received().find("hemmelig") == std::string::npos);
  CHECK(proxy.received().empty());

  auto s = campaign_status(dir, config, "proxied");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n);
  CHECK(sms_arrivals(dir).size() == static_cast<std::size_t>(n));
}
