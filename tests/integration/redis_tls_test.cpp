// rediss://: a redis-server that listens only on its TLS port, with certificates made for the
// test. The engine and the CLI work over it (exact counts); a certificate from another CA, one
// for another name, and a missing client certificate where Redis asks for one are refused with
// an error that names the server and the reason.
#include "tests/integration/e2e.hpp"
#include "testpeers/throwaway_cert.hpp"

using namespace budstikke::testing;
namespace tp = budstikke::testpeers;

namespace {

// redis-server with no plain port: only TLS, its certificate issued by `ca.pem` in `dir`.
redis_server start_tls_redis(const temp_dir& dir, const std::string& auth_clients) {
  redis_server r;
  r.port = budstikke::support::free_loopback_port();
  r.process = budstikke::support::child_process::spawn(
      {"redis-server", "--port", "0", "--tls-port", std::to_string(r.port), "--bind", "127.0.0.1",
       "--tls-cert-file", (dir / "redis.pem").string(), "--tls-key-file", (dir / "redis.key").string(),
       "--tls-ca-cert-file", (dir / "ca.pem").string(), "--tls-auth-clients", auth_clients, "--save", "",
       "--appendonly", "no", "--dir", dir.path().string(), "--logfile", (dir / "redis.log").string()});
  REQUIRE(budstikke::support::wait_for_port(r.port, std::chrono::seconds(10)));
  return r;
}

// The fixture's engine config, its Redis reached as rediss:// with these redis keys.
fs::path tls_config(const temp_dir& dir, const redis_server& redis, std::uint16_t relay_port,
                    const std::string& redis_keys, const std::string& name) {
  auto text = slurp(write_config(dir, redis, relay_port));
  const std::string plain = "  url: redis://127.0.0.1:";
  text.replace(text.find(plain), plain.size(), redis_keys + "  url: rediss://127.0.0.1:");
  auto path = dir / name;
  std::ofstream(path) << text;
  return path;
}

struct pki {
  tp::pem_pair ca = tp::make_test_ca("redis test CA");
  explicit pki(const temp_dir& dir) {
    tp::write_pem_files(ca, dir / "ca.pem", dir / "ca.key");
    tp::write_pem_files(tp::make_test_certificate(tp::cert_spec{}, &ca), dir / "redis.pem", dir / "redis.key");
    tp::write_pem_files(tp::make_test_ca("another CA"), dir / "other-ca.pem", dir / "other-ca.key");
    tp::cert_spec client{.common_name = "budstikke", .dns_names = {}, .ip_addresses = {}, .extended_key_usage = "clientAuth"};
    tp::write_pem_files(tp::make_test_certificate(client, &ca), dir / "client.pem", dir / "client.key");
  }
};

}  // namespace

TEST_CASE("redis tls: enqueue, the engine and status over rediss://, the certificate checked") {
  temp_dir dir;
  pki certs(dir);
  auto redis = start_tls_redis(dir, "no");
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string(), "--reject-rcpt-containing", "@avd3."});
  auto config = tls_config(dir, redis, sink.port, "  tls_ca_file: " + (dir / "ca.pem").string() + "\n", "tls.yaml");

  constexpr int n = 70;  // 10 at avd3
  enqueue_newsletter(dir, config, "tls", write_members(dir, n));
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"});
  INFO(run.output);
  REQUIRE(run.code == 0);
  auto s = campaign_status(dir, config, "tls");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n - 10);
  CHECK(field(s, "failed") == 10);
  require_each_once(arrivals(maildir), n - 10);

  const std::string where = "Redis at 127.0.0.1:" + std::to_string(redis.port) + "/0";
  {  // a certificate from another CA is refused
    auto other = tls_config(dir, redis, sink.port, "  tls_ca_file: " + (dir / "other-ca.pem").string() + "\n", "other-ca.yaml");
    auto r = run_cli(dir, {"status", "--config", other.string()});
    INFO(r.output);
    CHECK(r.code == 1);
    CHECK(r.output.find(where + ": certificate verify failed: ") != std::string::npos);
  }
  {  // a certificate for another name is refused
    auto other = tls_config(dir, redis, sink.port,
                            "  tls_ca_file: " + (dir / "ca.pem").string() + "\n  tls_server_name: redis.other.example\n",
                            "other-name.yaml");
    auto r = run_cli(dir, {"status", "--config", other.string()});
    INFO(r.output);
    CHECK(r.code == 1);
    CHECK(r.output.find(where + ": certificate verify failed: hostname mismatch") != std::string::npos);
  }
  {  // the system's store does not trust a private CA
    auto system = tls_config(dir, redis, sink.port, "", "system.yaml");
    auto r = run_cli(dir, {"status", "--config", system.string()});
    INFO(r.output);
    CHECK(r.code == 1);
    CHECK(r.output.find(where + ": certificate verify failed") != std::string::npos);
  }
}

TEST_CASE("redis tls: a Redis that asks for a client certificate gets one, and refuses a client without") {
  temp_dir dir;
  pki certs(dir);
  auto redis = start_tls_redis(dir, "yes");
  auto sink = start_own_sink(dir);
  const std::string ca = "  tls_ca_file: " + (dir / "ca.pem").string() + "\n";
  auto with_cert = tls_config(dir, redis, sink.port,
                              ca + "  tls_cert_file: " + (dir / "client.pem").string() + "\n  tls_key_file: " +
                                  (dir / "client.key").string() + "\n",
                              "client.yaml");
  enqueue_newsletter(dir, with_cert, "mtls", write_members(dir, 5));
  auto ok = run_cli(dir, {"status", "--config", with_cert.string(), "--campaign", "mtls"});
  INFO(ok.output);
  CHECK(ok.code == 0);

  auto without = tls_config(dir, redis, sink.port, ca, "no-client.yaml");
  auto refused = run_cli(dir, {"status", "--config", without.string()});
  INFO(refused.output);
  CHECK(refused.code == 1);
  CHECK(refused.output.find("Redis at 127.0.0.1:" + std::to_string(redis.port) + "/0: ") != std::string::npos);

  // The same TLS settings with a plain URL: refused before anything is sent, the password unsaid.
  auto plain = run_cli(dir, {"status", "--config", with_cert.string(), "--redis",
                             "redis://:plain-secret-pw@127.0.0.1:" + std::to_string(redis.port)});
  INFO(plain.output);
  CHECK(plain.code == 2);
  CHECK(plain.output.find("redis.tls_ca_file is set, but the Redis URL (redis://127.0.0.1:") != std::string::npos);
  CHECK(plain.output.find("plain-secret-pw") == std::string::npos);
}
