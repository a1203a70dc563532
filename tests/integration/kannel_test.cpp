// The kannel gateway kind against a real Kannel (Debian's kannel: bearerbox + smsbox) whose SMSC
// is Kannel's "fake" one: bearerbox listens on the SMSC port and this test, as the fake SMSC
// client, reads the messages bearerbox would hand to an operator ("sender receiver text|ucs-2 data").
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "tests/integration/sms.hpp"

using namespace budstikke::testing;
namespace support = budstikke::support;

namespace {

constexpr const char* bearerbox_bin = "/usr/sbin/bearerbox";
constexpr const char* smsbox_bin = "/usr/sbin/smsbox";

// The fake SMSC's side: connects to bearerbox and collects every line it is sent.
class fake_smsc {
 public:
  explicit fake_smsc(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    reader_ = std::thread([this] {
      char buf[4096];
      std::string pending;
      for (;;) {
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) break;
        pending.append(buf, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = pending.find('\n')) != std::string::npos) {
          std::lock_guard lock(mutex_);
          lines_.push_back(pending.substr(0, nl));
          pending.erase(0, nl + 1);
        }
      }
    });
  }
  ~fake_smsc() {
    ::shutdown(fd_, SHUT_RDWR);
    reader_.join();
    ::close(fd_);
  }
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  // Waits until `n` lines arrived (bearerbox queues), at most `limit`.
  std::vector<std::string> wait_for(std::size_t n, std::chrono::seconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (lines().size() < n && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return lines();
  }

 private:
  int fd_ = -1;
  std::thread reader_;
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

struct kannel {
  support::child_process bearerbox, smsbox;
  std::uint16_t smsc_port = 0, sendsms_port = 0;
};

kannel start_kannel(const temp_dir& dir) {
  kannel k;
  auto admin = support::free_loopback_port(), box = support::free_loopback_port();
  k.smsc_port = support::free_loopback_port();
  k.sendsms_port = support::free_loopback_port();
  auto conf = dir / "kannel.conf";
  std::ofstream(conf) << "group = core\nadmin-port = " << admin << "\nadmin-password = budstikke-test\n"
                      << "admin-interface = 127.0.0.1\nsmsbox-port = " << box << "\nsmsbox-interface = 127.0.0.1\n"
                      << "box-allow-ip = 127.0.0.1\nlog-file = " << (dir / "bearerbox.log").string() << "\nlog-level = 1\n\n"
                      << "group = smsc\nsmsc = fake\nsmsc-id = fake\nhost = 127.0.0.1\nport = " << k.smsc_port
                      << "\nconnect-allow-ip = 127.0.0.1\n\n"
                      << "group = smsbox\nbearerbox-host = 127.0.0.1\nbearerbox-port = " << box
                      << "\nsendsms-port = " << k.sendsms_port << "\nsendsms-interface = 127.0.0.1\n"
                      << "log-file = " << (dir / "smsbox.log").string() << "\nlog-level = 1\n\n"
                      << "group = sendsms-user\nusername = budstikke\npassword = hemmelig\nconcatenation = true\n"
                      << "max-messages = 10\n\n"
                      << "group = sms-service\nkeyword = default\ntext = \"ok\"\n";
  k.bearerbox = support::child_process::spawn({bearerbox_bin, conf.string()}, (dir / "bearerbox.out").string());
  REQUIRE(support::wait_for_port(k.smsc_port, std::chrono::seconds(10)));
  k.smsbox = support::child_process::spawn({smsbox_bin, conf.string()}, (dir / "smsbox.out").string());
  REQUIRE(support::wait_for_port(k.sendsms_port, std::chrono::seconds(10)));
  return k;
}

bool kannel_installed() {
  if (::access(bearerbox_bin, X_OK) == 0 && ::access(smsbox_bin, X_OK) == 0) return true;
  WARN("Kannel is not installed (Debian package kannel; deploy/dev.sh test installs it): the real-Kannel scenario is skipped");
  return false;
}

// The engine's config for the kannel kind against `k`'s smsbox, with its sendsms user.
fs::path kannel_config(const temp_dir& dir, const redis_server& redis, const kannel& k, const std::string& extra = "") {
  std::ofstream(dir / "sms-password") << "hemmelig\n";
  return write_sms_config(dir, redis, "http://127.0.0.1:" + std::to_string(k.sendsms_port) + "/cgi-bin/sendsms",
                          "    kind: kannel\n    username: budstikke\n    password_file: " +
                              (dir / "sms-password").string() + "\n" + extra);
}

// The fake SMSC's lines ("Forbundet +4790000000 text Hei Åse 0! ..."): receiver -> messages.
std::map<std::string, int> receivers_of(const std::vector<std::string>& lines) {
  std::map<std::string, int> receivers;
  for (auto& l : lines) {
    auto first = l.find(' '), second = l.find(' ', first + 1);
    REQUIRE(second != std::string::npos);
    CHECK(l.substr(0, first) == "Forbundet");
    ++receivers[l.substr(first + 1, second - first - 1)];
    CHECK(l.substr(second + 1, 5) == "text ");
  }
  return receivers;
}

}  // namespace

TEST_CASE("e2e kannel: a campaign through a real bearerbox and smsbox reaches the SMSC once per member") {
  if (!kannel_installed()) return;
  temp_dir dir;
  auto redis = start_redis(dir);
  auto k = start_kannel(dir);
  fake_smsc smsc(k.smsc_port);
  auto config = kannel_config(dir, redis, k);
  constexpr int n = 200;
  enqueue_sms(dir, config, "kannel", write_sms_members(dir, n, {{3, "22 22 22 22"}}));
  run_until_idle(dir, config);
  auto s = campaign_status(dir, config, "kannel");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n - 1);
  CHECK(field(s, "skipped") == 1);

  auto lines = smsc.wait_for(n - 1, std::chrono::seconds(30));
  REQUIRE(lines.size() == static_cast<std::size_t>(n - 1));
  auto receivers = receivers_of(lines);
  CHECK(receivers.size() == static_cast<std::size_t>(n - 1));
  for (auto& [number, count] : receivers) CHECK(count == 1);
  CHECK(receivers.count("+4790000000") == 1);
}

// Campaigns above go out as POSTs (the default); GET, which puts every field in the URL, still works.
TEST_CASE("e2e kannel: GET and UCS-2 by hand, and wrong credentials are refused for good") {
  if (!kannel_installed()) return;
  temp_dir dir;
  auto redis = start_redis(dir);
  auto k = start_kannel(dir);
  fake_smsc smsc(k.smsc_port);
  auto url = "http://127.0.0.1:" + std::to_string(k.sendsms_port) + "/cgi-bin/sendsms";
  std::ofstream(dir / "sms-password") << "hemmelig\n";
  auto config = write_sms_config(dir, redis, url,
                                 "    kind: kannel\n    method: get\n    username: budstikke\n    password_file: " +
                                     (dir / "sms-password").string() + "\n");
  auto r = run_cli(dir, {"send", "--config", config.string(), "--to", "+47 901 23 456", "--text", "Привет, Åse"});
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(r.output.find("encoding:  UCS-2") != std::string::npos);
  auto lines = smsc.wait_for(1, std::chrono::seconds(20));
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].rfind("Forbundet +4790123456 ucs-2 ", 0) == 0);

  std::ofstream(dir / "sms-password") << "feil\n";
  auto refused = run_cli(dir, {"send", "--config", config.string(), "--to", "90123456", "--text", "Hei"});
  CHECK(refused.code == 1);
  CHECK(refused.output.find("permanent (403 Authorization failed for sendsms)") != std::string::npos);
}

// A gateway outage with the real thing: smsbox (Kannel's HTTP side) is down when the campaign
// starts and comes back on its port; nothing is failed, and the SMSC gets each number once.
TEST_CASE("e2e kannel: smsbox down at the start: the campaign waits, then every member once") {
  if (!kannel_installed()) return;
  temp_dir dir;
  auto redis = start_redis(dir);
  auto k = start_kannel(dir);
  fake_smsc smsc(k.smsc_port);
  k.smsbox.stop();
  auto config = kannel_config(dir, redis, k, "    connect_timeout_ms: 500\n");
  constexpr int n = 100;
  enqueue_sms(dir, config, "kannel-down", write_sms_members(dir, n));
  auto engine = spawn_cli(dir, {"run", "--config", config.string(), "--until-idle"}, "engine.log");
  std::this_thread::sleep_for(std::chrono::seconds(4));
  auto s = campaign_status(dir, config, "kannel-down");
  CHECK(field(s, "sent") == 0);
  CHECK(field(s, "failed") == 0);
  REQUIRE(s.at("paths").as_array().size() == 1);
  CHECK(s.at("paths").as_array()[0].as_object().at("state").as_string() == "suspended");
  k.smsbox = support::child_process::spawn({smsbox_bin, (dir / "kannel.conf").string()}, (dir / "smsbox-2.out").string());
  REQUIRE(support::wait_for_port(k.sendsms_port, std::chrono::seconds(10)));
  auto status = engine.wait_for(std::chrono::seconds(120));
  INFO(slurp(dir / "engine.log"));
  REQUIRE(status);
  CHECK(status->code == 0);

  s = campaign_status(dir, config, "kannel-down");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n);
  CHECK(field(s, "failed") == 0);
  auto lines = smsc.wait_for(n, std::chrono::seconds(30));
  auto receivers = receivers_of(lines);
  CHECK(receivers.size() == static_cast<std::size_t>(n));
  for (auto& [number, count] : receivers) CHECK(count == 1);
}
