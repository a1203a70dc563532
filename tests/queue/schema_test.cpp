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
  std::string error;
  auto back = campaign_definition::from_fields("c42", fields, error);
  REQUIRE(back);
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
  std::string error;
  std::vector<std::pair<std::string_view, std::string_view>> f{{"channel", "fax"}};
  CHECK_FALSE(campaign_definition::from_fields("c", f, error));
  CHECK(error.find("'channel'") != std::string::npos);

  f = {{"channel", "email"}, {"priority", "99"}};
  CHECK_FALSE(campaign_definition::from_fields("c", f, error));
  CHECK(error.find("'priority'") != std::string::npos);

  f = {{"channel", "email"}, {"total", "-1"}};
  CHECK_FALSE(campaign_definition::from_fields("c", f, error));
  CHECK(error.find("'total'") != std::string::npos);

  f = {{"priority", "1"}};
  CHECK_FALSE(campaign_definition::from_fields("c", f, error));
  CHECK(error.find("missing") != std::string::npos);
}

TEST_CASE("schema: recording outcomes is one EVAL with four arguments per record") {
  request req;
  std::vector<outcome_record> recs{{"1-0", final_state::sent, "m1", ""},
                                   {"2-0", final_state::skipped, "m2", "invalid address"}};
  append_record_outcomes(req, keys("p:"), "c1", "2026-11-23T00:00:00.000Z", recs);
  CHECK(req.commands() == 1);
  const auto& p = req.payload();
  CHECK(p.rfind("*20\r\n$4\r\nEVAL\r\n", 0) == 0);
  CHECK(p.find("$24\r\np:campaign:{c1}:inflight\r\n") != std::string::npos);
  CHECK(p.find("$15\r\np:campaign:{c1}\r\n") != std::string::npos);
  CHECK(p.find("$7\r\nskipped\r\n$2\r\nm2\r\n$15\r\ninvalid address\r\n$0\r\n\r\n") != std::string::npos);
}
