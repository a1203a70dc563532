// Previews need no Redis: `render` prints one message, `enqueue --dry-run` renders the first
// recipients and counts the variables their data lacks; List-Unsubscribe without a secret stops
// the engine before it starts.
#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;

namespace {

// Nothing listens here: a command that tried Redis would fail.
const std::string no_redis = "redis://127.0.0.1:1/0";

fs::path unsubscribe_config(const temp_dir& dir, bool with_secret) {
  auto secret = dir / "unsubscribe.secret";
  std::ofstream(secret) << "integration-test-secret-0123456789\n";
  auto path = dir / "preview.yaml";
  std::ofstream out(path);
  out << "email:\n  unsubscribe_url: https://min.forbundet.example/avmeld?t={token}\n";
  if (with_secret) out << "  unsubscribe_secret_file: " << secret.string() << "\n";
  return path;
}

}  // namespace

TEST_CASE("e2e: render prints a branch newsletter built on the shared layout, with List-Unsubscribe") {
  temp_dir dir;
  auto r = run_cli(dir, {"render", "--config", unsubscribe_config(dir, true).string(), "--redis", no_redis,
                         "--template", source_dir() + "/deploy/templates/avd-tromso", "--data",
                         R"({"to":"kari@blåbær.no","id":"M1","name":"Kari","title":"Innkalling","date":"12. mars"})",
                         "--from", "avd-tromso@forbundet.example"});
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(r.output.find("To: Kari <kari@xn--blbr-roah.no>\r\n") != std::string::npos);
  CHECK(r.output.find("List-Unsubscribe: <https://min.forbundet.example/avmeld?t=") != std::string::npos);
  CHECK(r.output.find("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n") != std::string::npos);
  // The branch's blocks replace the layout's; the layout's unsubscribe link stays.
  CHECK(r.output.find("Hilsen styret i avdeling Troms=C3=B8") != std::string::npos);
  CHECK(r.output.find("Med vennlig hilsen") == std::string::npos);
  CHECK(r.output.find("Meld deg av nyhetsbrevet: https://min.forbundet.example/avmeld?t=") != std::string::npos);
  CHECK(r.output.find("multipart/alternative") != std::string::npos);
}

TEST_CASE("e2e: render shows an SMS with its encoding, segments and what normalisation changed") {
  temp_dir dir;
  auto r = run_cli(dir, {"render", "--redis", no_redis, "--channel", "sms", "--template",
                         source_dir() + "/deploy/templates/avd-tromso", "--data",
                         R"({"to":"+4799999999","name":"Åse","date":"12. mars"})"});
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(r.output.find("Hei Åse! Årsmøtet i avdeling Tromsø er 12. mars på Folkets hus. \"Velkommen\" - styret\n") !=
        std::string::npos);
  CHECK(r.output.find("encoding: GSM-7\n") != std::string::npos);
  CHECK(r.output.find("segments: 1 (at most 6)\n") != std::string::npos);
  CHECK(r.output.find("normalised: « -> \" ×1, » -> \" ×1, – -> - ×1\n") != std::string::npos);

  auto limited = run_cli(dir, {"render", "--redis", no_redis, "--channel", "sms", "--template",
                               source_dir() + "/deploy/templates/avd-tromso", "--sms-max-segments", "1", "--data",
                               R"({"to":"+4799999999","name":")" + std::string(200, 'x') + R"("})"});
  INFO(limited.output);
  CHECK(limited.code == 2);
  CHECK(limited.output.find("would be skipped: the SMS has 2 segments, more than the campaign's maximum of 1") !=
        std::string::npos);
}

TEST_CASE("e2e: enqueue --dry-run renders the first recipients and counts missing variables") {
  temp_dir dir;
  auto members = write_members(dir, 20, {{1, R"({"to":"a1@avd1.example","id":"A1","name":"Uten avdeling"})"},
                                         {3, R"({"to":"a3@avd1.example","id":"A3"})"},
                                         {4, R"({"to":"ikke-en-adresse","id":"A4"})"},
                                         {15, R"({"to":"a15@avd1.example","id":"A15"})"}});
  auto r = run_cli(dir, {"enqueue", "--redis", no_redis, "--campaign", "proeve", "--template",
                         source_dir() + "/deploy/templates/newsletter", "--recipients", members.string(), "--from",
                         "nyheter@forbundet.example", "--dry-run", "--dry-run-count", "10"});
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(r.output.find("--- the message for line 1 ---") != std::string::npos);
  CHECK(r.output.find("Subject: ") != std::string::npos);
  CHECK(r.output.find(members.string() + ":5: skipped: address has no @") != std::string::npos);
  CHECK(r.output.find("rendered 9 of the first 10 recipients") != std::string::npos);
  CHECK(r.output.find("  branch: 2 of 10 recipients\n") != std::string::npos);  // line 16 is past the first 10
  CHECK(r.output.find("  name: 1 of 10 recipients\n") != std::string::npos);
  CHECK(r.output.find("nothing was enqueued") != std::string::npos);
}

TEST_CASE("e2e: a template set using a partial it does not have is refused") {
  temp_dir dir;
  fs::create_directories(dir / "set");
  std::ofstream(dir / "set" / "text.mustache") << "{{<layout_text}}{{$content}}Hei{{/content}}{{/layout_text}}\n";
  auto members = write_members(dir, 2);
  auto r = run_cli(dir, {"enqueue", "--redis", no_redis, "--campaign", "uten-layout", "--template",
                         (dir / "set").string(), "--recipients", members.string(), "--from",
                         "nyheter@forbundet.example", "--dry-run"});
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(r.output.find("text.mustache: partial 'layout_text' is not in") != std::string::npos);
}

TEST_CASE("e2e: List-Unsubscribe without a secret stops the engine with a configuration error") {
  temp_dir dir;
  auto r = run_cli(dir, {"run", "--config", unsubscribe_config(dir, false).string(), "--redis", no_redis,
                         "--until-idle"});
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(r.output.find("List-Unsubscribe is configured for newsletter, winback but there is no secret") !=
        std::string::npos);
}
