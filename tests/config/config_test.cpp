#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "adapters/sms_http/protocol.hpp"
#include "config/load.hpp"
#include "tests/support/yaml_files.hpp"

using namespace budstikke;
namespace fs = std::filesystem;

using budstikke::testing::load_error;
using budstikke::testing::load_yaml;
using budstikke::testing::write_yaml;

TEST_CASE("engine: the example configuration loads and means a local trial") {
  ::unsetenv("BUDSTIKKE_REDIS");
  auto cfg = load_config((fs::path(BUDSTIKKE_TEST_SOURCE_DIR) / "deploy" / "budstikke.example.yaml").string());
  CHECK(cfg.redis.host == "127.0.0.1");
  CHECK(cfg.redis.port == 6379);
  CHECK(cfg.smtp.host == "127.0.0.1");
  CHECK(cfg.smtp.port == 2525);
  CHECK(cfg.engine.window == 2000);
  CHECK(cfg.key_prefix == "budstikke:");
}

TEST_CASE("engine: configuration errors name file, line, key and the bound") {
  CHECK_THAT(load_error("engine:\n  window: 0\n"), Catch::Contains(":2:11: engine.window: 0 is out of range 1..1000000"));
  CHECK_THAT(load_error("engine:\n  windw: 10\n"), Catch::Contains(":2:3: engine.windw: unknown key"));
  CHECK_THAT(load_error("smtp:\n  port: many\n"), Catch::Contains("smtp.port: expected a whole number"));
  CHECK_THAT(load_error("redis:\n  url: http://x\n"), Catch::Contains("must start with redis://"));
  CHECK_THAT(load_error("engine: [1\n"), Catch::Contains(".yaml:"));
  CHECK_THAT(load_error("smpt:\n  port: 25\n"), Catch::Contains("config.smpt: unknown key"));
}

TEST_CASE("engine: BUDSTIKKE_REDIS overrides the file") {
  auto p = write_yaml("redis:\n  url: redis://10.0.0.1:6379/0\n");
  ::setenv("BUDSTIKKE_REDIS", "redis://127.0.0.1:7000/3", 1);
  auto cfg = load_config(p.string());
  ::unsetenv("BUDSTIKKE_REDIS");
  fs::remove(p);
  CHECK(cfg.redis.port == 7000);
  CHECK(cfg.redis.database == 3);
}

TEST_CASE("engine: a Redis URL from the environment or --redis keeps the file's timeouts and a password given apart") {
  auto p = write_yaml("redis:\n  url: redis://10.0.0.1:6379/0\n  command_timeout_ms: 1234\n  connect_timeout_ms: 4321\n");
  ::setenv("BUDSTIKKE_REDIS_PASSWORD", "apart", 1);
  auto cfg = load_config(p.string());
  ::unsetenv("BUDSTIKKE_REDIS_PASSWORD");
  fs::remove(p);
  set_redis_url(cfg, "redis://127.0.0.1:7001/2", "--redis");
  CHECK(cfg.redis.port == 7001);
  CHECK(cfg.redis.command_timeout == std::chrono::milliseconds(1234));
  CHECK(cfg.redis.connect_timeout == std::chrono::milliseconds(4321));
  CHECK(cfg.redis.password == "apart");
  set_redis_url(cfg, "redis://:inurl@127.0.0.1:7001/2", "--redis");
  CHECK(cfg.redis.password == "inurl");
  CHECK_THROWS_AS(set_redis_url(cfg, "redis://h:0", "--redis"), config_error);
}

TEST_CASE("engine: a rediss:// URL from the environment keeps the file's TLS files and a user given apart") {
  auto p = write_yaml("redis:\n  url: redis://10.0.0.1:6379/0\n  tls_ca_file: /etc/budstikke/redis-ca.pem\n"
                      "  tls_server_name: redis.internal\n");
  ::setenv("BUDSTIKKE_REDIS", "rediss://:pw@10.0.0.2:6380/1", 1);
  ::setenv("BUDSTIKKE_REDIS_USERNAME", "budstikke", 1);
  auto cfg = load_config(p.string());
  ::unsetenv("BUDSTIKKE_REDIS");
  ::unsetenv("BUDSTIKKE_REDIS_USERNAME");
  fs::remove(p);
  CHECK(cfg.redis.tls);
  CHECK(cfg.redis.host == "10.0.0.2");
  CHECK(cfg.redis.tls_ca_file == "/etc/budstikke/redis-ca.pem");
  CHECK(cfg.redis.tls_server_name == "redis.internal");
  CHECK(cfg.redis.username == "budstikke");
  CHECK(cfg.redis.password == "pw");
  CHECK_NOTHROW(check_redis_tls(cfg));
  set_redis_url(cfg, "redis://other:pw2@10.0.0.3", "--redis");
  CHECK_FALSE(cfg.redis.tls);
  // The file's TLS settings with a plain URL would be ignored, the password sent in clear: refused,
  // naming the setting, never the password.
  try {
    check_redis_tls(cfg);
    FAIL("a plain redis:// URL with redis.tls_ca_file set was taken");
  } catch (const config_error& e) {
    CHECK(std::string(e.what()).find("redis.tls_ca_file is set, but the Redis URL") != std::string::npos);
    CHECK(std::string(e.what()).find("rediss://") != std::string::npos);
    CHECK(std::string(e.what()).find("pw2") == std::string::npos);
  }
  CHECK(cfg.redis.username == "other");
  CHECK(cfg.redis.password == "pw2");
}

TEST_CASE("engine: a malformed Redis URL's config error does not repeat its password") {
  auto error = load_error("redis:\n  url: redis//budstikke:Pa55word@10.0.0.1\n");
  CHECK(error.find("redis.url") != std::string::npos);
  CHECK(error.find("redis//budstikke:***@10.0.0.1") != std::string::npos);
  CHECK(error.find("Pa55word") == std::string::npos);
}

TEST_CASE("engine: List-Unsubscribe needs a secret, from the environment or a file, never the YAML") {
  ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRET");
  ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRET_FILE");
  const std::string yaml = "email:\n  unsubscribe_url: https://min.example/avmeld?t={token}\n";
  auto error = load_error(yaml);
  CHECK(error.find("List-Unsubscribe is configured for newsletter, winback but there is no secret") != std::string::npos);
  CHECK(error.find("BUDSTIKKE_UNSUBSCRIBE_SECRET") != std::string::npos);

  ::setenv("BUDSTIKKE_UNSUBSCRIBE_SECRET", "short", 1);
  CHECK(load_error(yaml).find("shorter than 16 bytes") != std::string::npos);
  ::setenv("BUDSTIKKE_UNSUBSCRIBE_SECRET", "sixteen-bytes-or-more", 1);
  auto p = write_yaml(yaml + "  unsubscribe_categories: [newsletter]\n");
  auto cfg = load_config(p.string());
  fs::remove(p);
  ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRET");
  CHECK(cfg.email.unsubscribe_secret == "sixteen-bytes-or-more");
  CHECK(cfg.email.unsubscribe_key_id == "0");
  CHECK(cfg.email.has_unsubscribe_secret());
  CHECK(cfg.email.unsubscribe_enabled("newsletter"));
  CHECK_FALSE(cfg.email.unsubscribe_enabled("winback"));

  auto secret_file = write_yaml("from-a-file-0123456789\n");
  auto q = write_yaml(yaml + "  unsubscribe_secret_file: " + secret_file.string() + "\n");
  CHECK(load_config(q.string()).email.unsubscribe_secret == "from-a-file-0123456789");
  fs::remove(q);
  fs::remove(secret_file);

  CHECK(load_error("email:\n  unsubscribe_secret: x\n").find("unknown key") != std::string::npos);
  CHECK(load_error("email:\n  unsubscribe_url: http://min.example/{token}\n").find("https://") != std::string::npos);
  CHECK(load_error("email:\n  unsubscribe_url: https://min.example/avmeld\n").find("{token}") != std::string::npos);
  CHECK(load_error("email:\n  unsubscribe_mailto: avmeld@min.example\n").find("mailto:") != std::string::npos);
  // Without a URL there are no headers, so no secret is needed.
  CHECK(load_error("email:\n  unsubscribe_categories: [newsletter]\n").empty());
  CHECK_FALSE(load_yaml("email:\n  unsubscribe_categories: [newsletter]\n").email.has_unsubscribe_secret());
}

// The admin port applies tokens whenever a secret is configured, URL or not: a short secret is
// refused wherever it comes from, and the message names where, never the secret.
TEST_CASE("engine: a short unsubscribe secret is refused wherever it is read, with or without a URL") {
  ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRET");
  ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRET_FILE");
  ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRETS_FILE");
  const std::string with_url = "email:\n  unsubscribe_url: https://min.example/avmeld?t={token}\n";
  const std::string without_url = "email:\n  unsubscribe_categories: [newsletter]\n";
  const std::string fifteen = "fifteen-bytes-x";
  REQUIRE(fifteen.size() == 15);

  for (const auto& yaml : {with_url, without_url}) {
    INFO(yaml);
    ::setenv("BUDSTIKKE_UNSUBSCRIBE_SECRET", fifteen.c_str(), 1);
    auto error = load_error(yaml);
    CHECK_THAT(error, Catch::Contains("BUDSTIKKE_UNSUBSCRIBE_SECRET: the unsubscribe secret is shorter than 16 bytes"));
    CHECK_THAT(error, !Catch::Contains(fifteen));
    ::setenv("BUDSTIKKE_UNSUBSCRIBE_SECRET", "x", 1);
    CHECK_THAT(load_error(yaml), Catch::Contains("shorter than 16 bytes"));
    ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRET");

    auto short_file = write_yaml(fifteen + "\n");
    ::setenv("BUDSTIKKE_UNSUBSCRIBE_SECRET_FILE", short_file.c_str(), 1);
    CHECK_THAT(load_error(yaml), Catch::Contains("BUDSTIKKE_UNSUBSCRIBE_SECRET_FILE '" + short_file.string() +
                                                 "': the unsubscribe secret is shorter than 16 bytes"));
    ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRET_FILE");
    error = load_error(yaml + "  unsubscribe_secret_file: " + short_file.string() + "\n");
    CHECK_THAT(error, Catch::Contains("email.unsubscribe_secret_file '" + short_file.string() +
                                      "': the unsubscribe secret is shorter than 16 bytes"));
    fs::remove(short_file);
  }

  // Without a configuration file too (`budstikke consent withdraw --token` needs none).
  ::setenv("BUDSTIKKE_UNSUBSCRIBE_SECRET", fifteen.c_str(), 1);
  CHECK_THROWS_WITH(default_config(), Catch::Contains("shorter than 16 bytes"));
  ::setenv("BUDSTIKKE_UNSUBSCRIBE_SECRET", (fifteen + "y").c_str(), 1);
  CHECK(default_config().email.unsubscribe_secret == fifteen + "y");  // 16 bytes are enough
  ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRET");
}

TEST_CASE("engine: a list of unsubscribe keys: the first signs, every one verifies") {
  ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRET");
  ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRET_FILE");
  ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRETS_FILE");
  const std::string yaml = "email:\n  unsubscribe_url: https://min.example/avmeld?t={token}\n";
  auto list = write_yaml("# new first\n2027-01  new-secret-0123456789\n\n0\told-secret-0123456789\r\nx_9 older-secret-0123456789\n");
  auto cfg = load_yaml(yaml + "  unsubscribe_secrets_file: " + list.string() + "\n");
  CHECK(cfg.email.unsubscribe_key_id == "2027-01");
  CHECK(cfg.email.unsubscribe_secret == "new-secret-0123456789");
  const auto keys = cfg.email.unsubscribe_keys();
  REQUIRE(keys.size() == 3);
  CHECK(keys[0].id == "2027-01");
  CHECK(keys[1].id == "0");
  CHECK(keys[1].secret == "old-secret-0123456789");
  CHECK(keys[2].id == "x_9");
  CHECK(keys[2].secret == "older-secret-0123456789");

  // The same from the environment, without a configuration file.
  ::setenv("BUDSTIKKE_UNSUBSCRIBE_SECRETS_FILE", list.c_str(), 1);
  CHECK(default_config().email.unsubscribe_keys().size() == 3);
  // With a single secret as well, which one signs would be unclear.
  ::setenv("BUDSTIKKE_UNSUBSCRIBE_SECRET", "single-secret-0123456789", 1);
  CHECK_THROWS_WITH(default_config(), Catch::Contains("both an unsubscribe secret"));
  ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRETS_FILE");
  CHECK_THAT(load_error(yaml + "  unsubscribe_secrets_file: " + list.string() + "\n"),
             Catch::Contains("both an unsubscribe secret"));
  ::unsetenv("BUDSTIKKE_UNSUBSCRIBE_SECRET");
  CHECK_THAT(load_error(yaml + "  unsubscribe_secrets_file: " + list.string() + "\n  unsubscribe_secret_file: " +
                        list.string() + "\n"),
             Catch::Contains("both an unsubscribe secret"));
  fs::remove(list);

  // Each bad file is refused with its line, never its secrets; with or without a URL.
  auto error_of = [&](const std::string& text) {
    auto f = write_yaml(text);
    auto error = load_error("email:\n  unsubscribe_secrets_file: " + f.string() + "\n");
    CHECK(load_error(yaml + "  unsubscribe_secrets_file: " + f.string() + "\n") == error);
    CHECK_THAT(error, Catch::StartsWith(f.string()));
    fs::remove(f);
    return error;
  };
  CHECK_THAT(error_of("a new-secret-0123456789\nb short-secret\n"),
             Catch::EndsWith(":2: the secret of key 'b' is shorter than 16 bytes"));
  CHECK_THAT(error_of("a new-secret-0123456789\nb short-secret\n"), !Catch::Contains("short-secret"));
  CHECK_THAT(error_of("a new-secret-0123456789\na old-secret-0123456789\n"),
             Catch::EndsWith(":2: key id 'a' is given twice"));
  CHECK_THAT(error_of("toolongid new-secret-0123456789\n"), Catch::Contains(":1: 'toolongid' is not a key id"));
  CHECK_THAT(error_of("a:b new-secret-0123456789\n"), Catch::Contains(":1: 'a:b' is not a key id"));
  CHECK_THAT(error_of("new-secret-0123456789\n"), Catch::EndsWith(":1: expected KEYID SECRET (the secret without blanks)"));
  CHECK_THAT(error_of("a new secret 0123456789\n"), Catch::EndsWith(":1: expected KEYID SECRET (the secret without blanks)"));
  CHECK_THAT(error_of("# nothing\n\n"), Catch::Contains("no unsubscribe keys"));
  std::string seventeen;
  for (int i = 0; i < 17; ++i) seventeen += "k" + std::to_string(i) + " secret-number-" + std::to_string(i) + "-0123456789\n";
  CHECK_THAT(error_of(seventeen), Catch::EndsWith(":17: more than 16 keys"));
  seventeen.erase(seventeen.rfind("k16"));
  auto sixteen = write_yaml(seventeen);
  CHECK(load_yaml("email:\n  unsubscribe_secrets_file: " + sixteen.string() + "\n").email.unsubscribe_keys().size() == 16);
  fs::remove(sixteen);
}

TEST_CASE("engine: sms settings") {
  auto p = write_yaml("sms:\n  normalise: false\n  max_segments: 3\n");
  auto cfg = load_config(p.string());
  fs::remove(p);
  CHECK_FALSE(cfg.sms.normalise);
  CHECK(cfg.sms.max_segments == 3);
  CHECK(default_config().sms.normalise);
  CHECK(default_config().sms.max_segments == 6);
  CHECK(load_error("sms:\n  max_segments: 0\n").find("sms.max_segments") != std::string::npos);
  CHECK(load_error("sms:\n  normalise: maybe\n").find("expected true or false") != std::string::npos);
}

TEST_CASE("engine: the SMS gateway: Kannel defaults to POST, no proxy unless named, a warning for credentials in clear") {
  auto password = write_yaml("hemmelig\n");
  auto gateway = [&](const std::string& url, const std::string& extra = "") {
    return load_yaml("sms:\n  gateway:\n    kind: kannel\n    url: " + url + "\n    username: budstikke\n" + extra);
  };
  const std::string with_password = "    password_file: " + password.string() + "\n";
  namespace sh = adapters::sms_http;
  // GET would put the password in the URL, where proxies and access logs see it.
  auto kannel = gateway("https://sms.forbundet.example/cgi-bin/sendsms", with_password);
  CHECK(kannel.sms.gateway->method == sh::http_method::post);
  CHECK(kannel.sms.gateway->proxy.empty());
  CHECK(gateway("https://gw.example/s", "    method: get\n").sms.gateway->method == sh::http_method::get);
  CHECK(gateway("https://gw.example/s", "    proxy: http://proxy.forbundet.example:3128\n").sms.gateway->proxy ==
        "http://proxy.forbundet.example:3128");

  CHECK_FALSE(sh::credentials_in_clear(*kannel.sms.gateway));
  CHECK(sh::credentials_in_clear(*gateway("http://sms.forbundet.example:13013/cgi-bin/sendsms", with_password).sms.gateway));
  CHECK(sh::credentials_in_clear(*gateway("http://10.0.0.7/cgi-bin/sendsms", with_password).sms.gateway));
  CHECK_FALSE(sh::credentials_in_clear(*gateway("http://127.0.0.1:13013/cgi-bin/sendsms", with_password).sms.gateway));
  CHECK_FALSE(sh::credentials_in_clear(*gateway("http://localhost:13013/cgi-bin/sendsms", with_password).sms.gateway));
  CHECK_FALSE(sh::credentials_in_clear(*gateway("http://[::1]:13013/cgi-bin/sendsms", with_password).sms.gateway));
  // No password, no token, no user info: nothing to give away.
  CHECK_FALSE(sh::credentials_in_clear(*gateway("http://sms.forbundet.example/cgi-bin/sendsms").sms.gateway));
  CHECK(sh::credentials_in_clear(*gateway("http://u:p@sms.forbundet.example/send").sms.gateway));
  CHECK_FALSE(sh::credentials_in_clear(*gateway("http://u:p@127.0.0.1/send").sms.gateway));
  fs::remove(password);
}

TEST_CASE("engine: categories may skip reading consent, but not while requiring it") {
  auto p = write_yaml("categories:\n  receipt:\n    check_consent: false\n");
  auto cfg = load_config(p.string());
  fs::remove(p);
  CHECK_FALSE(cfg.policy("receipt").check_consent);
  CHECK(cfg.policy("tariff").check_consent);
  CHECK(cfg.policy("unknown-category").check_consent);
  // newsletter requires a grant by default: reading no consent cannot go with that.
  CHECK_THAT(load_error("categories:\n  newsletter:\n    check_consent: false\n"),
             Catch::Contains("categories.newsletter.check_consent: false, but consent_required is true"));
  CHECK_THAT(load_error("categories:\n  receipt:\n    check_consent: maybe\n"),
             Catch::Contains("categories.receipt.check_consent: expected true or false"));
}
