// The keys of unsubscribe tokens, end to end. A newsletter is sent with secret A; the engine is
// restarted with B signing and A still accepted: the links already sent (version 2 tokens of A's
// key id, and version 1 tokens as the release before key ids made them) still unsubscribe with
// `budstikke consent withdraw --token`, and the next newsletter carries tokens of B's key id.
// With A retired its links are refused. A secret too short to be safe stops the CLI (exit 2).
#include <cstdlib>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "queue/consent.hpp"
#include "support/base64.hpp"
#include "templates/unsubscribe.hpp"
#include "tests/integration/e2e.hpp"
#include "tests/integration/consent.hpp"

using namespace budstikke::testing;
namespace queue = budstikke::queue;
namespace templates = budstikke::templates;

namespace {

constexpr const char* secret_a = "the-first-secret-A-0123456789";
constexpr const char* secret_b = "the-second-secret-B-0123456789";

// The fixture's config with List-Unsubscribe and the given keys (`email:` lines).
fs::path config_with_keys(const temp_dir& dir, const redis_server& redis, std::uint16_t relay_port,
                          const std::string& name, const std::string& keys) {
  auto path = write_config(dir, redis, relay_port);
  auto renamed = dir / name;
  fs::rename(path, renamed);
  std::ofstream(renamed, std::ios::app) << "email:\n  unsubscribe_url: https://min.forbundet.example/avmeld?t={token}\n"
                                        << keys;
  return renamed;
}

fs::path write_file(const temp_dir& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir / name) << text;
  return dir / name;
}

std::string payload_of(const std::string& token) {
  std::string payload;
  REQUIRE(budstikke::support::decode_base64url(std::string_view(token).substr(0, token.find('.')), payload));
  return payload;
}

// A token as the release before key ids made it (version 1), written here from the format in
// docs/unsubscribe.md rather than by the engine, which makes only version 2.
std::string version_1_token(std::string_view secret, std::string_view campaign, std::string_view member) {
  const std::string payload = fmt::format("1:email:{}:{}", campaign, member);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac, &len);
  std::string token;
  budstikke::support::append_base64url(payload, token);
  token.push_back('.');
  budstikke::support::append_base64url(std::string_view(reinterpret_cast<const char*>(mac), len), token);
  return token;
}

cli_result withdraw(const temp_dir& dir, const fs::path& config, const std::string& token) {
  return run_cli(dir, {"consent", "withdraw", "--config", config.string(), "--token", token});
}

void run_until_idle(const temp_dir& dir, const fs::path& config) {
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"});
  INFO(run.output);
  REQUIRE(run.code == 0);
}

}  // namespace

TEST_CASE("e2e: after the unsubscribe secret is replaced, the links already sent still unsubscribe until the old key is retired") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  constexpr int n = 6;
  auto members = write_members(dir, n);

  // March: one secret, A (key id 0).
  write_file(dir, "secret-a", std::string(secret_a) + "\n");
  auto config_a = config_with_keys(dir, redis, sink.port, "a.yaml",
                                   "  unsubscribe_secret_file: " + (dir / "secret-a").string() + "\n");
  enqueue_newsletter(dir, config_a, "nyhetsbrev-mars", members);
  run_until_idle(dir, config_a);
  const auto march_m1 = token_delivered_to(maildir, "medlem1@avd1.example");
  const auto march_m2 = token_delivered_to(maildir, "medlem2@avd2.example");
  CHECK(payload_of(march_m1) == "2:0:email:nyhetsbrev-mars:M1");
  // Links of the same campaign as an engine from before key ids wrote them.
  const auto old_release_m3 = version_1_token(secret_a, "nyhetsbrev-mars", "M3");
  const auto old_release_m4 = version_1_token(secret_a, "nyhetsbrev-mars", "M4");
  for (const auto& f : fs::directory_iterator(maildir / "new")) fs::remove(f.path());

  // April: B signs, A still verifies.
  write_file(dir, "keys-rotated", fmt::format("# B signs from April\n2027-01 {}\n0 {}\n", secret_b, secret_a));
  auto config_rotated = config_with_keys(dir, redis, sink.port, "rotated.yaml",
                                         "  unsubscribe_secrets_file: " + (dir / "keys-rotated").string() + "\n");
  auto r = withdraw(dir, config_rotated, march_m1);
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(r.output.find("member M1: email consent for newsletter withdrawn") != std::string::npos);
  r = withdraw(dir, config_rotated, old_release_m3);
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(r.output.find("member M3: email consent for newsletter withdrawn") != std::string::npos);

  enqueue_newsletter(dir, config_rotated, "nyhetsbrev-april", members);
  run_until_idle(dir, config_rotated);
  auto s = campaign_status(dir, config_rotated, "nyhetsbrev-april");
  require_adds_up(s, n);
  CHECK(field(s, "sent") == n - 2);
  CHECK(field(s, "skipped") == 2);
  const auto reasons = outcome_reasons(redis, "nyhetsbrev-april");
  CHECK(reasons.count("M1") == 1);
  CHECK(reasons.count("M3") == 1);
  const auto april_m0 = token_delivered_to(maildir, "medlem0@avd0.example");
  CHECK(payload_of(april_m0) == "2:2027-01:email:nyhetsbrev-april:M0");
  const templates::unsubscribe_key key_b{"2027-01", secret_b};
  CHECK(templates::verify_unsubscribe_token({&key_b, 1}, april_m0));
  // Signed with B, not A: an engine that knows only A refuses it.
  r = withdraw(dir, config_a, april_m0);
  CHECK(r.code == 2);
  CHECK(r.output.find("invalid token") != std::string::npos);
  CHECK(newsletter_consent(redis, "M0") == "(nil)");

  // A retired: its links are refused and change nothing; B's still work.
  write_file(dir, "keys-retired", fmt::format("2027-01 {}\n", secret_b));
  auto config_retired = config_with_keys(dir, redis, sink.port, "retired.yaml",
                                         "  unsubscribe_secrets_file: " + (dir / "keys-retired").string() + "\n");
  for (const auto& token : {march_m2, old_release_m4}) {
    r = withdraw(dir, config_retired, token);
    INFO(r.output);
    CHECK(r.code == 2);
    CHECK(r.output.find("invalid token") != std::string::npos);
  }
  CHECK(newsletter_consent(redis, "M2") == "(nil)");
  CHECK(newsletter_consent(redis, "M4") == "(nil)");
  r = withdraw(dir, config_retired, april_m0);
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(newsletter_consent(redis, "M0").rfind("withdrawn|", 0) == 0);
}

TEST_CASE("e2e: an unsubscribe secret shorter than 16 bytes stops the CLI with exit code 2, URL or not") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto sink = start_own_sink(dir);
  // No unsubscribe_url: the admin port would still apply tokens signed with this secret.
  write_file(dir, "short-secret", "0123456789\n");
  auto config = write_config(dir, redis, sink.port);
  std::ofstream(config, std::ios::app) << "email:\n  unsubscribe_secret_file: " << (dir / "short-secret").string() << "\n";
  auto r = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, std::chrono::seconds(30));
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(r.output.find("email.unsubscribe_secret_file '" + (dir / "short-secret").string() +
                      "': the unsubscribe secret is shorter than 16 bytes") != std::string::npos);

  // From the environment, without a configuration file.
  ::setenv("BUDSTIKKE_UNSUBSCRIBE_SECRET", "0123456789", 1);
  r = run_cli(dir, {"consent", "withdraw", "--redis", redis.url(), "--token", "x.y"}, std::chrono::seconds(30));
  ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRET");
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(r.output.find("error: BUDSTIKKE_UNSUBSCRIBE_SECRET: the unsubscribe secret is shorter than 16 bytes") !=
        std::string::npos);
  CHECK(r.output.find("0123456789") == std::string::npos);
}
