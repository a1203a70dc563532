// Which buckets a message passes: domains on whole labels without regard to case (IDN as xn--),
// tenants, channels; and the limits and quiet_hours configuration with its errors.
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "tests/support/yaml_files.hpp"
#include "engine/limits.hpp"
#include "templates/address.hpp"

using namespace budstikke;
using namespace budstikke::engine;
namespace fs = std::filesystem;

using budstikke::testing::load_error;
using budstikke::testing::write_yaml;
using budstikke::testing::load_yaml;

TEST_CASE("limits: the configuration, fractional rates, IDN domains") {
  auto cfg = load_yaml(
      "limits:\n  global: 500\n  email: 300\n  sms: 0.5\n  burst_ms: 50\n"
      "  domains:\n    Gmail.com: 100\n    bølgen.no: 2.5\n    .hotmail.com: 10\n"
      "  tenants:\n    forbundet-ost: 50\n");
  const auto& l = cfg.limits;
  CHECK(l.global == 500);
  CHECK(l.email == 300);
  CHECK(l.sms == 0.5);
  CHECK(l.burst == std::chrono::milliseconds(50));
  CHECK(l.domains.at("gmail.com") == 100);
  CHECK(l.domains.at("xn--blgen-vua.no") == 2.5);
  CHECK(l.domains.at("hotmail.com") == 10);
  CHECK(l.tenants.at("forbundet-ost") == 50);
  CHECK(l.any());
  CHECK_FALSE(load_yaml("engine:\n  workers: 1\n").limits.any());
}

TEST_CASE("limits: configuration errors name the key and the bound") {
  CHECK_THAT(load_error("limits:\n  global: 0\n"), Catch::Contains(":2:11: limits.global: 0 per second is out of range 0.001..1000000"));
  CHECK_THAT(load_error("limits:\n  global: fast\n"), Catch::Contains("limits.global: expected messages per second"));
  CHECK_THAT(load_error("limits:\n  gloabl: 10\n"), Catch::Contains("limits.gloabl: unknown key"));
  CHECK_THAT(load_error("limits:\n  domains:\n    'a b': 10\n"), Catch::Contains("limits.domains: 'a b' is not a domain name"));
  CHECK_THAT(load_error("limits:\n  domains:\n    gmail.com: -1\n"), Catch::Contains("limits.domains.gmail.com: -1 per second"));
  CHECK_THAT(load_error("limits:\n  domains:\n    gmail.com: 1\n    GMAIL.com: 2\n"), Catch::Contains("'gmail.com' is listed twice"));
  CHECK_THAT(load_error("limits:\n  burst_ms: 5000\n"), Catch::Contains("limits.burst_ms: 5000 ms is out of range 0..1000"));
}

TEST_CASE("limits: which buckets a message passes") {
  limits_config l;
  l.global = 100;
  l.sms = 5;
  l.domains = {{"gmail.com", 10}, {"mx.gmail.com", 20}, {"xn--blgen-vua.no", 1}};
  l.tenants = {{"ost", 3}};
  limit_plan plan(l, budstikke::queue::keys("bs:"));
  REQUIRE(plan.enabled());
  CHECK(plan.at(plan.global()).spec.key == "bs:{rate}:global");
  CHECK(plan.at(plan.global()).spec.interval_us == 10000);
  CHECK(plan.at(plan.global()).spec.tolerance_us == 20000);
  CHECK(plan.channel(budstikke::queue::channel::email) == -1);
  CHECK(plan.at(plan.channel(budstikke::queue::channel::sms)).spec.key == "bs:{rate}:sms");
  CHECK(plan.at(plan.channel(budstikke::queue::channel::sms)).kind == metrics::limiter::adapter);
  CHECK(plan.at(plan.tenant("ost")).spec.key == "bs:{rate}:tenant:ost");
  CHECK(plan.tenant("vest") == -1);

  auto domain_key = [&](std::string_view address) -> std::string {
    int b = plan.domain(budstikke::templates::address_domain(address));
    return b < 0 ? "-" : plan.at(b).spec.key;
  };
  CHECK(domain_key("kari@gmail.com") == "bs:{rate}:domain:gmail.com");
  CHECK(domain_key("kari@GMail.COM") == "bs:{rate}:domain:gmail.com");
  CHECK(domain_key("kari@eu.gmail.com") == "bs:{rate}:domain:gmail.com");
  CHECK(domain_key("kari@a.mx.gmail.com") == "bs:{rate}:domain:mx.gmail.com");  // the longest match
  CHECK(domain_key("kari@gmail.com.") == "bs:{rate}:domain:gmail.com");
  CHECK(domain_key("kari@notgmail.com") == "-");  // whole labels only
  CHECK(domain_key("kari@gmail.co") == "-");
  CHECK(domain_key("kari@xn--blgen-vua.no") == "bs:{rate}:domain:xn--blgen-vua.no");
  CHECK(domain_key("no-at-sign") == "-");

  CHECK_FALSE(limit_plan(limits_config{}, budstikke::queue::keys()).enabled());
}

TEST_CASE("quiet hours: the configuration and its errors") {
  auto cfg = load_yaml(
      "quiet_hours:\n"
      "  - {channel: sms, categories: [winback, newsletter], from: \"21:00\", to: \"08:00\", timezone: Europe/Oslo}\n"
      "  - {channel: email, from: \"22:00:30\", to: \"06:00\", timezone: UTC}\n");
  REQUIRE(cfg.quiet_hours.size() == 2);
  CHECK(cfg.quiet_hours[0].channel == budstikke::queue::channel::sms);
  CHECK(cfg.quiet_hours[0].categories == std::vector<std::string>{"winback", "newsletter"});
  CHECK(cfg.quiet_hours[0].from == 21 * 3600);
  CHECK(cfg.quiet_hours[0].to == 8 * 3600);
  CHECK(cfg.quiet_hours[0].timezone == "Europe/Oslo");
  CHECK(cfg.quiet_hours[1].categories.empty());
  CHECK(cfg.quiet_hours[1].from == 22 * 3600 + 30);

  CHECK_THAT(load_error("quiet_hours:\n  - {channel: fax, from: \"21:00\", to: \"08:00\", timezone: UTC}\n"),
             Catch::Contains("quiet_hours[0].channel: 'fax' is not a channel"));
  CHECK_THAT(load_error("quiet_hours:\n  - {channel: sms, from: \"9pm\", to: \"08:00\", timezone: UTC}\n"),
             Catch::Contains("quiet_hours[0].from: expected \"HH:MM\" or \"HH:MM:SS\", got '9pm'"));
  CHECK_THAT(load_error("quiet_hours:\n  - {channel: sms, from: \"21:00\", to: \"08:00\", timezone: Europe/Atlantis}\n"),
             Catch::Contains(":2:58: quiet_hours[0].timezone: 'Europe/Atlantis' is not a time zone"));
  CHECK_THAT(load_error("quiet_hours:\n  - {channel: sms, from: \"21:00\", to: \"08:00\"}\n"),
             Catch::Contains("quiet_hours[0]: needs channel, from, to and timezone"));
  CHECK_THAT(load_error("quiet_hours:\n  - {channel: sms, from: \"08:00\", to: \"08:00\", timezone: UTC}\n"),
             Catch::Contains("from and to are the same time"));
  CHECK_THAT(load_error("quiet_hours:\n  - {channel: sms, form: \"08:00\"}\n"), Catch::Contains("quiet_hours[0].form: unknown key"));
  CHECK_THAT(load_error("quiet_hours: {channel: sms}\n"), Catch::Contains("quiet_hours: expected a list"));
}
