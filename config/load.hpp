// Reading the configuration: one YAML file (yaml-cpp stays behind this header), environment
// variables and secret files, into the typed config (config/config.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace budstikke {

// Reads the file; unknown keys are errors (a typo must not silently fall back to a default).
// BUDSTIKKE_REDIS overrides redis.url, BUDSTIKKE_REDIS_PASSWORD the password. Throws
// config_error naming file, line, column and key.
config load_config(const std::string& path);
// The defaults alone, with the same environment overrides.
config default_config();
// The variables of config/keys.cpp's environment table, in its order.
void apply_environment(config& cfg);

// A secret file's content without its trailing line breaks; config_error when it cannot be read.
std::string read_secret_file(const std::string& path);
// Makes `secret` the one unsubscribe key (id "0"); config_error naming `where` (a variable or a
// file, never the secret) when it is shorter than 16 bytes: a short secret makes tokens forgeable.
void set_unsubscribe_secret(config& cfg, std::string secret, std::string_view where);
// Makes the file's keys the unsubscribe keys: one `KEYID SECRET` a line (blank lines and lines
// starting with '#' aside), the first signs; config_error naming the file and line when a line is
// not that, an id is not [A-Za-z0-9_-]{1,8} or repeats, a secret is short, or there are no keys
// or more than 16.
void read_unsubscribe_secrets_file(config& cfg, const std::string& path);
// Points cfg.redis at the URL and keeps its timeouts; config_error naming `where` if it is none.
void set_redis_url(config& cfg, const std::string& url, const std::string& where);

// Once the Redis URL is final (file, BUDSTIKKE_REDIS, --redis): throws config_error when a
// redis.tls_* setting is given but the URL is a plain redis:// one, which would ignore it and
// send the password in clear where TLS was meant.
void check_redis_tls(const config& cfg);

// "HH:MM" or "HH:MM:SS" (00:00:00..23:59:59) -> seconds after midnight.
std::optional<int> parse_time_of_day(std::string_view s);
// True for a time zone id ICU knows (an IANA id such as "Europe/Oslo", or "UTC").
bool known_time_zone(std::string_view id);

}  // namespace budstikke
