// The engine's configuration: one YAML file, every key with a default and a bound
// (docs/config.md is the reference; keep it in step). Secrets never live in the YAML:
// they come from environment variables or files.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "adapters/smtp/pool.hpp"
#include "queue/redis.hpp"

namespace budstikke::engine {

struct engine_config {
  std::size_t workers = 0;          // shards; 0 = one per core
  std::size_t window = 2000;        // in-flight messages per shard (read, not yet recorded)
  std::size_t read_batch = 256;     // XREADGROUP COUNT
  std::size_t record_batch = 512;   // outcomes per recording pipeline
  std::chrono::milliseconds record_interval{5};   // longest an outcome waits to be recorded
  std::chrono::milliseconds registry_interval{1000};  // how often the campaign registry is re-read
  std::chrono::milliseconds idle_poll{200};       // XREADGROUP BLOCK when nothing is waiting
  std::string consumer;             // consumer name prefix; default: the host name
  std::size_t max_attempts = 3;     // sends of one message before a transient failure is final
  std::chrono::milliseconds retry_backoff{1000};  // first retry delay; doubles, full jitter
  std::chrono::milliseconds shutdown_grace{10000};  // SIGTERM: how long in-flight work may finish
};

struct email_config {
  std::string message_id_domain;    // right side of Message-ID; default: the sender's domain
};

struct config {
  queue::redis_config redis;
  std::string key_prefix = "budstikke:";
  engine_config engine;
  adapters::smtp::relay_config smtp;
  email_config email;
};

// A configuration error names the file, line and key.
class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads the file; unknown keys are errors (a typo must not silently fall back to a default).
// BUDSTIKKE_REDIS overrides redis.url, BUDSTIKKE_REDIS_PASSWORD the password.
config load_config(const std::string& path);
// The defaults alone, with the same environment overrides.
config default_config();
void apply_environment(config& cfg);

}  // namespace budstikke::engine
