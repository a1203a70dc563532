// smtp.tls_verify: false with AUTH configured sends the password to whoever answers: the engine
// says so once per relay when it starts, and not when the certificate is verified.
#include "tests/integration/e2e.hpp"
#include "testpeers/throwaway_cert.hpp"

using namespace budstikke::testing;
namespace tp = budstikke::testpeers;

namespace {

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("smtp: AUTH to a relay whose certificate is not verified is warned about once per relay") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto ca = tp::make_test_ca("relay test CA");
  tp::write_pem_files(ca, dir / "ca.pem", dir / "ca.key");
  tp::write_pem_files(tp::make_test_certificate(tp::cert_spec{}, &ca), dir / "relay.pem", dir / "relay.key");
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string(), "--tls-cert", (dir / "relay.pem").string(),
                                   "--tls-key", (dir / "relay.key").string(), "--auth", "forbundet:riktig"});
  std::ofstream(dir / "smtp-password") << "riktig";
  const std::string warning = "smtp.tls_verify is false: the AUTH password goes to a relay whose certificate is not checked";

  struct variant {
    std::string name, smtp_keys;
    std::size_t warnings;
  };
  const std::string auth = "  username: forbundet\n  password_file: " + (dir / "smtp-password").string() + "\n";
  int campaigns = 0;
  for (const auto& v : {variant{"unverified", "  tls: starttls\n  tls_verify: false\n" + auth, 1},
                        variant{"verified", "  tls: starttls\n  ca_file: " + (dir / "ca.pem").string() + "\n" + auth, 0}}) {
    INFO(v.name);
    auto config = write_config(dir, redis, sink.port);  // two shards
    auto text = slurp(config);
    text.insert(text.find("  connections: 4\n"), v.smtp_keys);
    std::ofstream(config) << text;
    const std::string id = "auth-" + std::to_string(++campaigns);
    enqueue_newsletter(dir, config, id, write_members(dir, 5));
    auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"});
    INFO(run.output);
    REQUIRE(run.code == 0);
    CHECK(occurrences(run.output, warning) == v.warnings);
    if (v.warnings > 0) CHECK(run.output.find("\"relay\":\"127.0.0.1:" + std::to_string(sink.port) + "\"") != std::string::npos);
    auto s = campaign_status(dir, config, id);
    require_adds_up(s, 5);
    CHECK(field(s, "sent") == 5);
  }
}
