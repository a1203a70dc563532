#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "config/reference.hpp"

using namespace budstikke;
namespace fs = std::filesystem;

namespace {

std::string committed_docs() {
  std::stringstream ss;
  ss << std::ifstream(fs::path(BUDSTIKKE_TEST_SOURCE_DIR) / "docs" / "config.md").rdbuf();
  return ss.str();
}

const reference_row& row(const std::vector<reference_row>& rows, std::string_view key) {
  for (const auto& r : rows)
    if (r.key == "`" + std::string(key) + "`") return r;
  static const reference_row none;
  FAIL("no row for " << key);
  return none;
}

}  // namespace

TEST_CASE("reference: docs/config.md's tables are the ones config/keys.cpp writes") {
  const auto docs = committed_docs();
  REQUIRE_FALSE(docs.empty());
  // On failure: ninja -C build config_docs, and commit docs/config.md.
  CHECK(with_reference_tables(docs) == docs);
}

TEST_CASE("reference: every section has one marked table, and only known sections are marked") {
  const std::string prose = "# Title\n\nSome prose.\n\n";
  std::string marked = prose;
  for (auto s : reference_sections()) marked += "<!-- table: " + std::string(s) + " -->\n| old |\n|---|\n\nprose\n";
  auto written = with_reference_tables(marked);
  CHECK(written.find("| old |") == std::string::npos);
  CHECK(written.find("| `window` | 2000 | 1–1000000 | messages in flight per shard") != std::string::npos);
  CHECK(with_reference_tables(written) == written);

  CHECK_THROWS_WITH(with_reference_tables(prose), Catch::Contains("no table is marked for 'environment'"));
  CHECK_THROWS_WITH(with_reference_tables(marked + "<!-- table: engine -->\n"), Catch::Contains("marked twice"));
  CHECK_THROWS_WITH(with_reference_tables(marked + "<!-- table: engnie -->\n"), Catch::Contains("no section 'engnie'"));
}

TEST_CASE("reference: defaults are config{}'s, shown as the docs show them") {
  const config defaults;
  CHECK(row(reference_rows("engine"), "window").default_value == std::to_string(defaults.engine.window));
  CHECK(row(reference_rows("engine"), "consumer").default_value == "host name");
  CHECK(row(reference_rows("engine"), "admin_listen").default_value == "`" + defaults.engine.admin_listen + "`");
  CHECK(row(reference_rows("engine"), "tenant_weights").default_value == "`{}` (1 each)");
  CHECK(row(reference_rows("engine"), "consumer_timeout_ms").bounds == "1000–3600000; ≥ 2 × `heartbeat_interval_ms`");
  CHECK(row(reference_rows("redis"), "url").default_value == "`redis://127.0.0.1:6379/0`");
  CHECK(row(reference_rows("redis"), "key_prefix").default_value == "`budstikke:`");
  CHECK(row(reference_rows("smtp"), "port").default_value == std::to_string(defaults.smtp.port));
  CHECK(row(reference_rows("smtp"), "port").default_value == "2525");
  CHECK(row(reference_rows("smtp"), "tls").default_value == "`none`");
  CHECK(row(reference_rows("smtp"), "tls").bounds == "`none`, `starttls`, `implicit`");
  CHECK(row(reference_rows("smtp"), "tls_verify").bounds == "`true`, `false`");
  CHECK(row(reference_rows("smtp"), "relays").bounds == "1–32; a list of mappings");
  CHECK(row(reference_rows("smtp.relays"), "weight").default_value == "1");
  CHECK(row(reference_rows("categories"), "consent_required").default_value ==
        "`true` for `newsletter` and `winback`, else `false`");
  CHECK(row(reference_rows("categories"), "resend_ambiguous").default_value ==
        "`[email]` for `tariff` and `transactional`, else `[]`");
  CHECK(row(reference_rows("categories"), "check_consent").default_value == "`true`");
  CHECK(row(reference_rows("limits"), "global").default_value == "none");
  CHECK(row(reference_rows("limits"), "global").bounds == "0.001–1000000");
  CHECK(row(reference_rows("limits"), "burst_ms").default_value == "20");
  CHECK(row(reference_rows("email"), "unsubscribe_categories").default_value == "`[newsletter, winback]`");
  CHECK(row(reference_rows("sms"), "default_region").default_value == "`NO`");
  CHECK(row(reference_rows("sms.gateway"), "kind").default_value == "`kannel`");
  CHECK(row(reference_rows("sms.gateway"), "fields").default_value ==
        "`{to: to, from: from, text: text, encoding: encoding}`");
  CHECK(row(reference_rows("sms.gateway.fields"), "to").default_value == "`to`");
  CHECK(row(reference_rows("environment"), "BUDSTIKKE_REDIS").meaning.find("redis.url") != std::string::npos);
}
