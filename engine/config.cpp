#include "engine/config.hpp"

#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace budstikke::engine {
namespace {

// One section of the file: its keys, each with a reader that checks the bound.
class section_reader {
 public:
  section_reader(std::string file, std::string section) : file_(std::move(file)), section_(std::move(section)) {}

  template <typename T>
  void integer(const std::string& key, T& target, long long min, long long max) {
    readers_[key] = [this, key, &target, min, max](const YAML::Node& n) {
      long long v = 0;
      try {
        v = n.as<long long>();
      } catch (const YAML::Exception&) {
        fail(n, key, fmt::format("expected a whole number, got '{}'", n.Scalar()));
      }
      if (v < min || v > max) fail(n, key, fmt::format("{} is out of range {}..{}", v, min, max));
      target = static_cast<T>(v);
    };
  }

  void millis(const std::string& key, std::chrono::milliseconds& target, long long min, long long max) {
    readers_[key] = [this, key, &target, min, max](const YAML::Node& n) {
      long long v = 0;
      try {
        v = n.as<long long>();
      } catch (const YAML::Exception&) {
        fail(n, key, fmt::format("expected milliseconds, got '{}'", n.Scalar()));
      }
      if (v < min || v > max) fail(n, key, fmt::format("{} ms is out of range {}..{}", v, min, max));
      target = std::chrono::milliseconds(v);
    };
  }

  void text(const std::string& key, std::string& target) {
    readers_[key] = [this, key, &target](const YAML::Node& n) {
      if (!n.IsScalar()) fail(n, key, "expected a string");
      target = n.Scalar();
    };
  }

  void custom(const std::string& key, std::function<void(const YAML::Node&)> read) {
    readers_[key] = std::move(read);
  }

  void read(const YAML::Node& node) {
    if (!node) return;
    if (!node.IsMap()) fail(node, "", "expected a mapping of keys");
    for (const auto& kv : node) {
      auto key = kv.first.as<std::string>();
      auto it = readers_.find(key);
      if (it == readers_.end()) {
        std::string known;
        for (const auto& [k, _] : readers_) known += (known.empty() ? "" : ", ") + k;
        fail(kv.first, key, fmt::format("unknown key (known keys: {})", known));
      }
      it->second(kv.second);
    }
  }

  [[noreturn]] void fail(const YAML::Node& n, const std::string& key, const std::string& why) const {
    auto mark = n.Mark();
    std::string where = key.empty() ? section_ : section_ + "." + key;
    throw config_error(fmt::format("{}:{}:{}: {}: {}", file_, mark.line + 1, mark.column + 1, where, why));
  }

 private:
  std::string file_;
  std::string section_;
  std::map<std::string, std::function<void(const YAML::Node&)>> readers_;
};

std::string read_secret_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw config_error(fmt::format("cannot read secret file '{}'", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

void set_redis_url(config& cfg, const std::string& url, const std::string& where) {
  std::string error;
  auto parsed = queue::parse_redis_url(url, error);
  if (!parsed) throw config_error(fmt::format("{}: {}", where, error));
  parsed->connect_timeout = cfg.redis.connect_timeout;
  parsed->command_timeout = cfg.redis.command_timeout;
  cfg.redis = *parsed;
}

}  // namespace

void apply_environment(config& cfg) {
  if (const char* url = std::getenv("BUDSTIKKE_REDIS"); url && *url) set_redis_url(cfg, url, "BUDSTIKKE_REDIS");
  if (const char* pw = std::getenv("BUDSTIKKE_REDIS_PASSWORD"); pw && *pw) cfg.redis.password = pw;
  if (const char* f = std::getenv("BUDSTIKKE_REDIS_PASSWORD_FILE"); f && *f) cfg.redis.password = read_secret_file(f);
}

config default_config() {
  config cfg;
  cfg.smtp.port = 2525;
  apply_environment(cfg);
  return cfg;
}

config load_config(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw config_error(fmt::format("{}: cannot open the configuration file", path));
  } catch (const YAML::ParserException& e) {
    throw config_error(fmt::format("{}:{}:{}: {}", path, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  config cfg;
  cfg.smtp.port = 2525;
  if (root.IsNull()) {
    apply_environment(cfg);
    return cfg;
  }

  section_reader top(path, "config");
  std::string redis_url, redis_password_file;
  section_reader redis(path, "redis");
  redis.text("url", redis_url);
  redis.text("password_file", redis_password_file);
  redis.text("key_prefix", cfg.key_prefix);
  redis.millis("connect_timeout_ms", cfg.redis.connect_timeout, 100, 600000);
  redis.millis("command_timeout_ms", cfg.redis.command_timeout, 100, 600000);

  auto& e = cfg.engine;
  section_reader eng(path, "engine");
  eng.integer("workers", e.workers, 0, 256);
  eng.integer("window", e.window, 1, 1000000);
  eng.integer("read_batch", e.read_batch, 1, 10000);
  eng.integer("record_batch", e.record_batch, 1, 10000);
  eng.millis("record_interval_ms", e.record_interval, 1, 10000);
  eng.millis("registry_interval_ms", e.registry_interval, 50, 600000);
  eng.millis("idle_poll_ms", e.idle_poll, 10, 60000);
  eng.text("consumer", e.consumer);
  eng.integer("max_attempts", e.max_attempts, 1, 100);
  eng.millis("retry_backoff_ms", e.retry_backoff, 1, 3600000);
  eng.millis("shutdown_grace_ms", e.shutdown_grace, 0, 600000);

  auto& s = cfg.smtp;
  section_reader smtp(path, "smtp");
  smtp.text("host", s.host);
  smtp.integer("port", s.port, 1, 65535);
  smtp.text("helo_name", s.helo_name);
  smtp.integer("connections", s.connections, 1, 1000);
  smtp.integer("max_messages_per_connection", s.max_messages_per_connection, 1, 10000000);
  smtp.millis("connect_timeout_ms", s.connect_timeout, 100, 600000);
  smtp.millis("command_timeout_ms", s.command_timeout, 100, 600000);
  smtp.millis("data_timeout_ms", s.data_timeout, 100, 3600000);
  smtp.millis("idle_timeout_ms", s.idle_timeout, 100, 3600000);

  section_reader email(path, "email");
  email.text("message_id_domain", cfg.email.message_id_domain);

  top.custom("redis", [&](const YAML::Node& n) { redis.read(n); });
  top.custom("engine", [&](const YAML::Node& n) { eng.read(n); });
  top.custom("smtp", [&](const YAML::Node& n) { smtp.read(n); });
  top.custom("email", [&](const YAML::Node& n) { email.read(n); });
  top.read(root);

  if (!redis_url.empty()) set_redis_url(cfg, redis_url, path + ": redis.url");
  if (!redis_password_file.empty()) cfg.redis.password = read_secret_file(redis_password_file);
  apply_environment(cfg);
  return cfg;
}

}  // namespace budstikke::engine
