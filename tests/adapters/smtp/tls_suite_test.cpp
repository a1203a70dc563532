// TLS and AUTH against the project's own sink, in-process on port 0, with certificates made for
// each test: a good chain, a self-signed certificate, a wrong host name, an expired certificate
// and a stripped STARTTLS. Whenever the client must not trust the peer, the sink sees no AUTH
// and no MAIL.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>

#include "testpeers/smtp_sink.hpp"
#include "testpeers/throwaway_cert.hpp"
#include "harness.hpp"

using namespace budstikke;
using namespace budstikke::adapters;
using std::chrono::milliseconds;
namespace fs = std::filesystem;

namespace {

struct pki {
  fs::path dir = test::temp_dir("tls");
  testpeers::pem_pair ca = testpeers::make_test_ca("budstikke test CA");
  fs::path ca_file = dir / "ca.pem";
  pki() { std::ofstream(ca_file, std::ios::binary) << ca.cert; }
  ~pki() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  // Writes a server certificate and key; returns the sink options that use them.
  testpeers::smtp_sink_options sink_with(const testpeers::cert_spec& spec, bool self_signed, const std::string& tag) {
    auto pair = testpeers::make_test_certificate(spec, self_signed ? nullptr : &ca);
    testpeers::write_pem_files(pair, dir / (tag + ".crt"), dir / (tag + ".key"));
    testpeers::smtp_sink_options so;
    so.tls_cert_file = (dir / (tag + ".crt")).string();
    so.tls_key_file = (dir / (tag + ".key")).string();
    return so;
  }
};

smtp::relay_config client_for(std::uint16_t port, const pki& p) {
  smtp::relay_config cfg;
  cfg.port = port;
  cfg.connections = 2;
  cfg.tls = smtp::tls_mode::starttls;
  cfg.ca_file = p.ca_file.string();
  cfg.tls_server_name = "localhost";
  cfg.reconnect_backoff_min = milliseconds(50);
  cfg.reconnect_backoff_max = milliseconds(200);
  cfg.command_timeout = milliseconds(3000);
  cfg.log = [](smtp::log_level, std::string_view, std::string_view, std::string_view) {};
  return cfg;
}

struct run_result {
  test::counting_listener listener;
  std::vector<delivery> ds;
  smtp::pool::stats pool_stats{};
  testpeers::smtp_sink::stats sink_stats{};
};

run_result run(testpeers::smtp_sink_options so, smtp::relay_config cfg, std::size_t n) {
  boost::asio::io_context io;
  testpeers::smtp_sink server(io.get_executor(), so);
  cfg.port = server.port();
  run_result r;
  smtp::pool pool(io.get_executor(), cfg, r.listener);
  r.ds = test::make_deliveries(n);
  REQUIRE(test::push_all_and_close(io, pool, r.ds, milliseconds(10000), [&] { server.stop(); }));
  r.pool_stats = pool.statistics();
  r.sink_stats = server.statistics();
  return r;
}

// The client refused the peer: nothing sensitive went out, deliveries came back unsent (the path failed, not the messages).
void check_refused(const run_result& r, std::string_view reason) {
  INFO("sink: tls_handshakes " << r.sink_stats.tls_handshakes << " tls_failures " << r.sink_stats.tls_failures
                               << " auth " << r.sink_stats.auth_commands << " mail " << r.sink_stats.mail_commands);
  CHECK(r.sink_stats.auth_commands == 0);
  CHECK(r.sink_stats.mail_commands == 0);
  CHECK(r.sink_stats.messages == 0);
  CHECK(r.listener.count(outcome::unsent) == r.ds.size());
  CHECK(r.listener.each_once(r.ds));
  for (const auto& d : r.ds) {
    CHECK(d.reply.rfind("local:", 0) == 0);
    CHECK(d.reply.find(reason) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("smtp tls: STARTTLS with a verified chain and AUTH, stored byte for byte", "[smtp][tls]") {
  pki p;
  auto so = p.sink_with({}, false, "good");
  so.auth_user = "union";
  so.auth_password = "s3cret:with colon";
  auto dir = p.dir / "mail";
  so.maildir = dir.string();
  auto cfg = client_for(0, p);
  cfg.username = "union";
  cfg.password = "s3cret:with colon";
  auto r = run(so, cfg, 200);
  CHECK(r.listener.count(outcome::accepted) == 200);
  CHECK(r.sink_stats.tls_handshakes == r.pool_stats.connects);
  CHECK(r.sink_stats.auth_commands == r.pool_stats.connects);
  CHECK(r.sink_stats.mail_commands == 200);

  std::ifstream log(dir / "recipients.log");
  std::map<std::string, std::string> file_of;
  for (std::string line; std::getline(log, line);) {
    auto tab = line.find('\t');
    file_of[line.substr(tab + 1)] = line.substr(0, tab);
  }
  REQUIRE(file_of.size() == r.ds.size());
  std::size_t mismatches = 0;
  for (auto& d : r.ds) {
    if (test::read_file(dir / "new" / file_of[d.envelope_to]) != test::expected_stored(d)) ++mismatches;
  }
  CHECK(mismatches == 0);
}

TEST_CASE("smtp tls: implicit TLS with a certificate for the IP address", "[smtp][tls]") {
  pki p;
  auto so = p.sink_with({}, false, "implicit");
  so.implicit_tls = true;
  auto cfg = client_for(0, p);
  cfg.tls = smtp::tls_mode::implicit;
  cfg.tls_server_name = "";  // the host, 127.0.0.1: checked against the IP SAN
  auto r = run(so, cfg, 100);
  CHECK(r.listener.count(outcome::accepted) == 100);
  CHECK(r.sink_stats.tls_handshakes >= 1);
}

TEST_CASE("smtp tls: self-signed certificate, not trusted: no AUTH, no MAIL", "[smtp][tls]") {
  pki p;
  auto so = p.sink_with({}, true, "selfsigned");
  so.auth_user = "union";
  so.auth_password = "pw";
  auto cfg = client_for(0, p);
  cfg.username = "union";
  cfg.password = "pw";
  auto r = run(so, cfg, 20);
  check_refused(r, "TLS");
  CHECK(r.pool_stats.tls_failures >= 1);
  CHECK(r.sink_stats.tls_failures >= 1);
}

TEST_CASE("smtp tls: self-signed certificate against the system store: no MAIL", "[smtp][tls]") {
  pki p;
  auto so = p.sink_with({}, true, "selfsigned-system");
  auto cfg = client_for(0, p);
  cfg.ca_file.clear();  // the system's store does not know it
  auto r = run(so, cfg, 10);
  check_refused(r, "TLS");
}

TEST_CASE("smtp tls: certificate for another host name: no AUTH, no MAIL", "[smtp][tls]") {
  pki p;
  testpeers::cert_spec spec;
  spec.common_name = "relay.other.example";
  spec.dns_names = {"relay.other.example"};
  spec.ip_addresses = {};
  auto so = p.sink_with(spec, false, "wronghost");
  so.auth_user = "union";
  so.auth_password = "pw";
  auto cfg = client_for(0, p);
  cfg.username = "union";
  cfg.password = "pw";
  auto r = run(so, cfg, 20);
  check_refused(r, "TLS");
  CHECK(r.pool_stats.tls_failures >= 1);
}

TEST_CASE("smtp tls: expired certificate: no AUTH, no MAIL", "[smtp][tls]") {
  pki p;
  testpeers::cert_spec spec;
  spec.valid_from = std::chrono::hours(-48);
  spec.valid_until = std::chrono::hours(-24);
  auto so = p.sink_with(spec, false, "expired");
  so.auth_user = "union";
  so.auth_password = "pw";
  auto cfg = client_for(0, p);
  cfg.username = "union";
  cfg.password = "pw";
  auto r = run(so, cfg, 20);
  check_refused(r, "TLS");
}

TEST_CASE("smtp tls: stripped STARTTLS: no AUTH, no MAIL in clear text", "[smtp][tls]") {
  pki p;
  testpeers::smtp_sink_options so;  // no certificate: STARTTLS is not offered, AUTH is (loopback)
  so.auth_user = "union";
  so.auth_password = "pw";
  auto cfg = client_for(0, p);
  cfg.username = "union";
  cfg.password = "pw";
  cfg.allow_auth_without_tls = true;  // even so: STARTTLS was required
  auto r = run(so, cfg, 20);
  check_refused(r, "STARTTLS");
}

TEST_CASE("smtp tls: verification can be switched off explicitly", "[smtp][tls]") {
  pki p;
  auto so = p.sink_with({}, true, "noverify");
  auto cfg = client_for(0, p);
  cfg.tls_verify = false;
  auto r = run(so, cfg, 10);
  CHECK(r.listener.count(outcome::accepted) == 10);
}

TEST_CASE("smtp auth: wrong password is a relay failure, no MAIL", "[smtp][auth]") {
  pki p;
  auto so = p.sink_with({}, false, "badpw");
  so.auth_user = "union";
  so.auth_password = "right";
  auto cfg = client_for(0, p);
  cfg.username = "union";
  cfg.password = "wrong";
  auto r = run(so, cfg, 20);
  CHECK(r.sink_stats.auth_commands >= 1);
  CHECK(r.sink_stats.mail_commands == 0);
  CHECK(r.listener.count(outcome::unsent) == 20);
  CHECK(r.pool_stats.auth_failures >= 1);
  for (const auto& d : r.ds) {
    CHECK(d.reply.find("credentials") != std::string::npos);
    CHECK(d.reply.find("wrong") == std::string::npos);  // the password never shows up
  }
}

TEST_CASE("smtp auth: clear text only to a loopback relay when allowed", "[smtp][auth]") {
  testpeers::smtp_sink_options so;
  so.auth_user = "union";
  so.auth_password = "pw";
  smtp::relay_config cfg;
  cfg.connections = 1;
  cfg.username = "union";
  cfg.password = "pw";
  cfg.reconnect_backoff_min = milliseconds(50);
  cfg.log = [](smtp::log_level, std::string_view, std::string_view, std::string_view) {};
  {
    auto r = run(so, cfg, 5);
    CHECK(r.sink_stats.auth_commands == 0);
    CHECK(r.sink_stats.mail_commands == 0);
    CHECK(r.listener.count(outcome::unsent) == 5);
  }
  cfg.allow_auth_without_tls = true;
  {
    auto r = run(so, cfg, 5);
    CHECK(r.sink_stats.auth_commands == 1);
    CHECK(r.listener.count(outcome::accepted) == 5);
  }
}
