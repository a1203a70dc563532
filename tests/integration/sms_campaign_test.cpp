// An SMS campaign through the project's SMS sink: numbers normalised to E.164, invalid and
// fixed-line numbers skipped with reasons, UCS-2 where the text needs it, every number once.
#include "tests/integration/sms.hpp"

using namespace budstikke::testing;

TEST_CASE("e2e sms: a campaign through the Kannel-kind sink, invalid numbers skipped, each number once") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto sink = start_sms_sink(dir);
  auto config = write_sms_config(dir, redis, "http://127.0.0.1:" + std::to_string(sink.port) + "/cgi-bin/sendsms");
  constexpr int n = 600;
  auto members = write_sms_members(dir, n, {{5, "22 22 22 22"}, {6, "12345"}, {7, "not a number"}});
  enqueue_sms(dir, config, "winback", members, "tariff");
  auto log = run_until_idle(dir, config);
  CHECK(log.find("+47") == std::string::npos);  // no numbers in logs

  auto s = campaign_status(dir, config, "winback");
  require_adds_up(s, n);
  CHECK(field(s, "skipped") == 3);
  CHECK(field(s, "sent") == n - 3);
  std::vector<boost::json::object> lines;
  auto seen = sms_arrivals(dir, &lines);
  CHECK(seen.size() == static_cast<std::size_t>(n - 3));
  for (auto& [number, count] : seen) {
    CHECK(count == 1);
    CHECK(number.rfind("+479", 0) == 0);
    CHECK(number.size() == 11);
  }
  REQUIRE_FALSE(lines.empty());
  CHECK(lines[0].at("from").as_string() == "Forbundet");
  CHECK(lines[0].at("coding").as_string() == "gsm7");
  CHECK(std::string(lines[0].at("text").as_string()).find("Kontingenten for Tromsø") != std::string::npos);

  auto outcomes = run_cli(dir, {"status", "--config", config.string(), "--campaign", "winback", "--json"});
  CHECK(outcomes.code == 0);
}

TEST_CASE("e2e sms: JSON gateway kind, UCS-2 text, an over-long text skipped") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto sink = start_sms_sink(dir, {"--kind", "json", "--bearer", "tok-1"});
  auto config = write_sms_config(dir, redis, "http://127.0.0.1:" + std::to_string(sink.port) + "/v1/sms",
                                 "    kind: json\n    id_path: messages.0.id\n    bearer_token_file: " +
                                     (dir / "token").string() + "\n");
  std::ofstream(dir / "token") << "tok-1\n";
  fs::create_directories(dir / "tpl");
  std::ofstream(dir / "tpl" / "sms.mustache") << "Привет {{name}}{{#long}}{{long}}{{/long}}\n";
  auto path = dir / "ru.jsonl";
  {
    std::ofstream out(path);
    for (int i = 0; i < 40; ++i)
      out << "{\"to\":\"+47 9" << 1000000 + i << "\",\"id\":\"M" << i << "\",\"name\":\"Åse\""
          << (i == 0 ? ",\"long\":\"" + std::string(500, 'x') + "\"" : std::string()) << "}\n";
  }
  enqueue_sms(dir, config, "ucs2", path, "tariff", (dir / "tpl").string());
  run_until_idle(dir, config);
  auto s = campaign_status(dir, config, "ucs2");
  require_adds_up(s, 40);
  CHECK(field(s, "sent") == 39);
  CHECK(field(s, "skipped") == 1);  // 500 characters in UCS-2 is more than 6 segments
  std::vector<boost::json::object> lines;
  sms_arrivals(dir, &lines);
  REQUIRE(lines.size() == 39);
  for (auto& l : lines) CHECK(l.at("coding").as_string() == "ucs2");
}

TEST_CASE("e2e sms: budstikke send, one SMS by hand with encoding, segments and the gateway's answer") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto sink = start_sms_sink(dir);
  auto config = write_sms_config(dir, redis, "http://127.0.0.1:" + std::to_string(sink.port) + "/cgi-bin/sendsms");
  auto r = run_cli(dir, {"send", "--config", config.string(), "--channel", "sms", "--to", "412 34 567", "--member",
                         "M1", "--category", "transactional", "--text", "Hei {{name}}, møtet er flyttet til kl. 18.",
                         "--data", R"({"name":"Åse"})"});
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(r.output.find("encoding:  GSM-7") != std::string::npos);
  CHECK(r.output.find("segments:  1") != std::string::npos);
  CHECK(r.output.find("accepted (202 0: Accepted for delivery)") != std::string::npos);
  auto seen = sms_arrivals(dir);
  CHECK(seen["+4741234567"] == 1);

  // A category that requires consent, and no grant recorded: not sent.
  auto refused = run_cli(dir, {"send", "--config", config.string(), "--to", "41234567", "--member", "M1",
                               "--category", "winback", "--text", "Kom tilbake!"});
  CHECK(refused.code == 2);
  CHECK(refused.output.find("not sent:") != std::string::npos);
  // An invalid number is refused before anything else.
  auto invalid = run_cli(dir, {"send", "--config", config.string(), "--to", "12", "--text", "x"});
  CHECK(invalid.code == 2);
  CHECK(sms_arrivals(dir).size() == 1);
}
