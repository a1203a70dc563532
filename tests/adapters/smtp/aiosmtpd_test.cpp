// The pool against Python's aiosmtpd (Debian python3-aiosmtpd, run with /usr/bin/python3) with
// STARTTLS required and AUTH: what the server stored equals what was pushed, byte for byte.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>

#include "testpeers/throwaway_cert.hpp"
#include "harness.hpp"
#include "support/process.hpp"
#include "tests/support/python.hpp"

using namespace budstikke;
using namespace budstikke::adapters;
using std::chrono::milliseconds;
namespace fs = std::filesystem;

namespace {

constexpr const char* python = testing::debian_python;

// Stores each message as <n>.eml (content after dot-unstuffing) plus <n>.rcpt, and counts MAIL
// and AUTH commands in counts.txt.
constexpr const char* server_script = R"PY(
import asyncio, ssl, sys, os, signal
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, cert, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
counter = {"n": 0, "auth": 0}

class Handler:
    async def handle_DATA(self, server, session, envelope):
        counter["n"] += 1
        n = counter["n"]
        with open(os.path.join(out, "%d.eml" % n), "wb") as f:
            f.write(envelope.original_content)
        with open(os.path.join(out, "%d.rcpt" % n), "w") as f:
            f.write("\n".join(envelope.rcpt_tos))
        return "250 2.0.0 stored %d" % n

def authenticator(server, session, envelope, mechanism, auth_data):
    counter["auth"] += 1
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"union" and auth_data.password == b"pw"
    return AuthResult(success=ok)

ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
c = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
               authenticator=authenticator, auth_require_tls=True)
c.start()
print("ready", flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
c.stop()
)PY";

bool aiosmtpd_available() { return testing::python_module_available("aiosmtpd.controller"); }

}  // namespace

TEST_CASE("smtp pool to aiosmtpd: STARTTLS and AUTH, stored byte for byte", "[smtp][pool][aiosmtpd]") {
  if (!aiosmtpd_available()) {
    WARN("SKIPPED: /usr/bin/python3 cannot import aiosmtpd (Debian package python3-aiosmtpd)");
    return;
  }
  auto dir = test::temp_dir("aiosmtpd");
  auto ca = testpeers::make_test_ca("budstikke test CA");
  std::ofstream(dir / "ca.pem", std::ios::binary) << ca.cert;
  testpeers::write_pem_files(testpeers::make_test_certificate({}, &ca), dir / "server.crt", dir / "server.key");
  fs::create_directories(dir / "out");
  std::ofstream(dir / "server.py") << server_script;
  std::uint16_t port = support::free_loopback_port();
  auto server = support::child_process::spawn({python, (dir / "server.py").string(), std::to_string(port),
                                               (dir / "server.crt").string(), (dir / "server.key").string(),
                                               (dir / "out").string()},
                                              (dir / "server.log").string());
  REQUIRE(support::wait_for_port(port, milliseconds(10000)));

  boost::asio::io_context io;
  test::counting_listener listener;
  smtp::relay_config cfg;
  cfg.port = port;
  cfg.connections = 2;
  cfg.max_messages_per_connection = 40;  // several handshakes
  cfg.tls = smtp::tls_mode::starttls;
  cfg.ca_file = (dir / "ca.pem").string();
  cfg.tls_server_name = "localhost";
  cfg.username = "union";
  cfg.password = "pw";
  smtp::pool pool(io.get_executor(), cfg, listener);
  auto ds = test::make_deliveries(100);
  REQUIRE(test::push_all_and_close(io, pool, ds, milliseconds(20000), [] {}));
  server.stop();

  INFO("server log: " << test::read_file(dir / "server.log"));
  CHECK(listener.count(outcome::accepted) == ds.size());
  CHECK(listener.each_once(ds));
  std::map<std::string, std::string> stored;  // recipient -> content
  for (std::size_t n = 1; fs::exists(dir / "out" / (std::to_string(n) + ".eml")); ++n) {
    stored[test::read_file(dir / "out" / (std::to_string(n) + ".rcpt"))] =
        test::read_file(dir / "out" / (std::to_string(n) + ".eml"));
  }
  REQUIRE(stored.size() == ds.size());
  std::size_t mismatches = 0;
  for (const auto& d : ds) {
    if (stored[d.envelope_to] != test::expected_stored(d)) ++mismatches;
  }
  CHECK(mismatches == 0);
  fs::remove_all(dir);
}

TEST_CASE("smtp pool to aiosmtpd: a wrong password sends no message", "[smtp][pool][aiosmtpd]") {
  if (!aiosmtpd_available()) {
    WARN("SKIPPED: /usr/bin/python3 cannot import aiosmtpd (Debian package python3-aiosmtpd)");
    return;
  }
  auto dir = test::temp_dir("aiosmtpd");
  auto ca = testpeers::make_test_ca("budstikke test CA");
  std::ofstream(dir / "ca.pem", std::ios::binary) << ca.cert;
  testpeers::write_pem_files(testpeers::make_test_certificate({}, &ca), dir / "server.crt", dir / "server.key");
  fs::create_directories(dir / "out");
  std::ofstream(dir / "server.py") << server_script;
  std::uint16_t port = support::free_loopback_port();
  auto server = support::child_process::spawn({python, (dir / "server.py").string(), std::to_string(port),
                                               (dir / "server.crt").string(), (dir / "server.key").string(),
                                               (dir / "out").string()},
                                              (dir / "server.log").string());
  REQUIRE(support::wait_for_port(port, milliseconds(10000)));

  boost::asio::io_context io;
  test::counting_listener listener;
  smtp::relay_config cfg;
  cfg.port = port;
  cfg.connections = 1;
  cfg.tls = smtp::tls_mode::starttls;
  cfg.ca_file = (dir / "ca.pem").string();
  cfg.tls_server_name = "localhost";
  cfg.username = "union";
  cfg.password = "not-it";
  cfg.reconnect_backoff_min = milliseconds(100);
  cfg.command_timeout = milliseconds(1500);
  smtp::pool pool(io.get_executor(), cfg, listener);
  auto ds = test::make_deliveries(5);
  REQUIRE(test::push_all_and_close(io, pool, ds, milliseconds(10000), [] {}));
  server.stop();
  CHECK(listener.count(outcome::unsent) == ds.size());
  // aiosmtpd 1.4 never answers a failed AUTH PLAIN: the command timeout ends it. Either way the
  // relay is unusable and nothing was sent.
  for (const auto& d : ds) {
    CHECK(d.reply.rfind("local:", 0) == 0);
    CHECK(d.reply.find("not-it") == std::string::npos);
  }
  CHECK_FALSE(fs::exists(dir / "out" / "1.eml"));
  fs::remove_all(dir);
}
