#include <catch2/catch.hpp>

#include "queue/campaign_store.hpp"
#include "queue/schema.hpp"

using namespace budstikke::queue;

TEST_CASE("schema: every key of a campaign shares one cluster hash tag") {
  keys k("bs:");
  CHECK(k.campaign("c1") == "bs:campaign:{c1}");
  CHECK(k.recipients("c1") == "bs:campaign:{c1}:recipients");
  CHECK(k.counts("c1") == "bs:campaign:{c1}:counts");
  CHECK(k.outcomes("c1") == "bs:campaign:{c1}:outcomes");
  CHECK(k.registry() == "bs:campaigns");
  CHECK(keys().registry() == "budstikke:campaigns");
}

TEST_CASE("schema: campaign ids are restricted to what is safe in keys and headers") {
  CHECK(valid_campaign_id("tariff-2026.oslo_1"));
  CHECK_FALSE(valid_campaign_id(""));
  CHECK_FALSE(valid_campaign_id("a}b"));
  CHECK_FALSE(valid_campaign_id("a b"));
  CHECK_FALSE(valid_campaign_id("a\r\nb"));
  CHECK_FALSE(valid_campaign_id(std::string(65, 'a')));
}

TEST_CASE("schema: a campaign definition round-trips through its hash fields") {
  campaign_definition c;
  c.id = "c42";
  c.kind = channel::sms;
  c.category = "tariff";
  c.tenant = "fagforbundet";
  c.priority = 8;
  c.from_address = "Forbundet";
  c.from_name = "Forbundet Øst";
  c.created_at = "2026-11-23T10:00:00.000Z";
  c.total = 900000;
  c.templates["sms"] = "Hei {{name}}";
  c.partials["footer"] = "Hilsen";

  std::vector<std::pair<std::string, std::string>> owned = c.to_fields();
  std::vector<std::pair<std::string_view, std::string_view>> fields(owned.begin(), owned.end());
  auto back = campaign_definition::from_fields("c42", fields);
  REQUIRE(back.has_value());
  CHECK(back->kind == channel::sms);
  CHECK(back->category == "tariff");
  CHECK(back->tenant == "fagforbundet");
  CHECK(back->priority == 8);
  CHECK(back->from_name == "Forbundet Øst");
  CHECK(back->total == 900000);
  CHECK(back->templates.at("sms") == "Hei {{name}}");
  CHECK(back->partials.at("footer") == "Hilsen");
}

TEST_CASE("schema: hostile campaign fields are refused with the field named") {
  auto refused = [](std::vector<std::pair<std::string_view, std::string_view>> f) {
    auto def = campaign_definition::from_fields("c", f);
    REQUIRE_FALSE(def.has_value());
    CHECK(def.error().code == std::errc::invalid_argument);
    return def.error().message;
  };
  CHECK(refused({{"channel", "fax"}}).find("'channel'") != std::string::npos);
  CHECK(refused({{"channel", "email"}, {"priority", "99"}}).find("'priority'") != std::string::npos);
  CHECK(refused({{"channel", "email"}, {"total", "-1"}}).find("'total'") != std::string::npos);
  CHECK(refused({{"priority", "1"}}).find("missing") != std::string::npos);
}

TEST_CASE("schema: recording outcomes is one EVALSHA with seven keys and ten arguments per record") {
  request req;
  std::vector<outcome_record> recs{
      {"1-0", final_state::sent, "m1", "", false, 1, "250 2.0.0 Ok", std::nullopt, 0},
      {"2-0", final_state::skipped, "m2", "invalid address", false, 0, "", std::nullopt, 0},
      {"3-0", std::nullopt, "m3", "451 4.3.0 Try later", true, 2, "451 4.3.0 Try later", 1500, 1, 1796176350912},
      {"4-0", std::nullopt, "m4", "", false, 0, "", std::nullopt, 0}};
  append_record_outcomes(req, keys("p:"), "c1", "2026-11-23T00:00:00.000Z", recs);
  CHECK(req.commands() == 1);
  const auto& p = req.payload();
  // EVALSHA sha1 numkeys + 7 keys + group, now + 4 x 10
  CHECK(p.rfind("*52\r\n$7\r\nEVALSHA\r\n$40\r\n" + std::string(record_outcomes_script.sha1) + "\r\n$1\r\n7\r\n", 0) == 0);
  REQUIRE(req.script_calls().size() == 1);
  CHECK(req.script_calls()[0].called == &record_outcomes_script);
  CHECK(p.find("$1\r\n7\r\n$26\r\np:campaign:{c1}:recipients\r\n") != std::string::npos);
  CHECK(p.find("$24\r\np:campaign:{c1}:inflight\r\n$21\r\np:campaign:{c1}:retry\r\n$20\r\np:campaign:{c1}:dead\r\n") !=
        std::string::npos);
  CHECK(p.find("$3\r\n1-0\r\n$4\r\nsent\r\n$2\r\nm1\r\n$0\r\n\r\n$0\r\n\r\n$1\r\n1\r\n$12\r\n250 2.0.0 Ok\r\n$1\r\n0\r\n$1\r\n0\r\n") !=
        std::string::npos);
  CHECK(p.find("$7\r\nskipped\r\n$2\r\nm2\r\n$15\r\ninvalid address\r\n$0\r\n\r\n$1\r\n0\r\n$0\r\n\r\n") != std::string::npos);
  // A retry: state `retry`, the resent flag, attempts, the reply, the delay and the pauses.
  CHECK(p.find("$3\r\n3-0\r\n$5\r\nretry\r\n$2\r\nm3\r\n$19\r\n451 4.3.0 Try later\r\n$1\r\nr\r\n$1\r\n2\r\n"
               "$19\r\n451 4.3.0 Try later\r\n$4\r\n1500\r\n$1\r\n1\r\n$13\r\n1796176350912\r\n") != std::string::npos);
  CHECK(p.find("$3\r\n4-0\r\n$7\r\nrelease\r\n") != std::string::npos);
}

TEST_CASE("schema: moving due retries is one EVALSHA over the campaign's retry set, stream and counts") {
  request req;
  append_move_due_retries(req, keys("p:"), "c1", 500);
  const auto& p = req.payload();
  CHECK(p.rfind("*7\r\n$7\r\nEVALSHA\r\n$40\r\n" + std::string(move_due_retries_script.sha1) + "\r\n", 0) == 0);
  CHECK(p.find("$1\r\n3\r\n$21\r\np:campaign:{c1}:retry\r\n$26\r\np:campaign:{c1}:recipients\r\n"
               "$22\r\np:campaign:{c1}:counts\r\n$3\r\n500\r\n") != std::string::npos);
  CHECK(keys("p:").events() == "p:events");
  CHECK(keys("p:").dead("c1") == "p:campaign:{c1}:dead");
}
