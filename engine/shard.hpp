// A shard: one thread, one io_context, its own Redis connections and its own SMTP pool.
// Shards share nothing but the process-wide counters and stop flag.
//
// Per message: pull (XREADGROUP into a bounded window of slots) -> check -> render -> send ->
// record (XACK + counters in one idempotent script, batched; a transient failure goes to the
// campaign's retry set in Redis and comes back as a new stream entry when due). A slot is held from the read until
// the outcome is recorded, so memory is O(window) whatever the campaign size, and nothing is
// acknowledged before the relay has answered.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "config/config.hpp"

namespace budstikke::engine {

struct engine_totals {
  std::atomic<std::uint64_t> sent{0}, failed{0}, skipped{0}, ambiguous{0}, handed_back{0};
  std::atomic<std::uint64_t> retries{0};  // transient failures put in a retry set
  std::atomic<std::uint64_t> campaigns_finished{0};
  // A shard stopped waiting for a suspended path after engine.max_path_wait (run --max-wait).
  std::atomic<bool> gave_up_waiting{false};
};

class shard {
 public:
  shard(const config& cfg, std::size_t index, bool until_idle, engine_totals& totals);
  ~shard();
  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;

  // Runs the shard on the calling thread until it is stopped, or idle with `until_idle`.
  // Returns false after a fatal error (logged).
  bool run();
  // Thread-safe: stop pulling, let in-flight work finish within the configured grace, record
  // everything, close connections.
  void request_stop();

 private:
  class impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace budstikke::engine
