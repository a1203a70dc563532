// A campaign as one shard serves it: its definition and compiled templates, whether and how it
// may be read now, where its crash recovery stands, and what of it the shard holds. The
// scheduler (what to read next) and the pipeline (the slots) read and change these fields; only
// the shard creates and forgets campaigns.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "engine/metrics.hpp"
#include "engine/quiet_hours.hpp"
#include "engine/renderer.hpp"
#include "engine/retry.hpp"
#include "queue/schema.hpp"

namespace budstikke::engine {

// Campaigns of this priority take the urgent lane: read before any other, a share of the window
// kept free for them, and first in line for the wire.
inline constexpr int urgent_priority = queue::max_priority;

enum class serve_mode : std::uint8_t {
  send,        // render and send
  fail_all,    // the definition is unusable (bad field, templates that do not compile): fail each recipient with the reason
  not_served,  // this engine has no adapter for the channel: leave the entries to one that has
};

// The engine's retry policy with the category's overrides (a category's 0 keeps the engine's).
inline retry_policy retry_policy_for(const engine_config& e, const category_policy& c) {
  auto pick = [](auto own, auto engine) { return own.count() > 0 ? own : engine; };
  return {.max_attempts = static_cast<std::uint32_t>(c.max_attempts > 0 ? c.max_attempts : e.max_attempts),
          .first = pick(c.retry_backoff, e.retry_backoff),
          .cap = pick(c.retry_backoff_max, e.retry_backoff_max),
          .max_age = pick(c.max_retry_age, e.max_retry_age)};
}

struct campaign {
  queue::campaign_definition def;
  std::string stream_key;
  std::string inflight_key;
  std::unique_ptr<campaign_renderer> renderer;
  serve_mode mode = serve_mode::send;
  std::string unusable_reason;
  const category_policy* policy = nullptr;
  retry_policy retry;       // the engine's, with its category's overrides (retry_policy_for)
  bool active = true;       // state == active
  bool quiet = false;       // in quiet hours: not read, and what it holds goes back unsent
  sys_ms quiet_change = sys_ms::min();  // when `quiet` is to be evaluated again
  int tenant_bucket = -1;   // its tenant's rate limit, if one is configured
  // Every path of its channel (each relay, the gateway) is suspended: not read until a probe
  // succeeds; what it holds goes to the adapter and comes back unsent, not charged.
  bool path_down = false;
  bool in_registry = true;

  // Crash recovery: consumers whose pending entries this shard takes over, its own first:
  // entries an earlier run of this consumer read but never recorded, then those of consumers
  // found dead.
  std::deque<std::string> recover;
  std::string recover_cursor = "-";
  bool own_recovered = false;        // new entries are read only after the own backlog
  bool recover_after_drain = false;  // a read failed mid-way, or the campaign paused: re-take the own backlog once drained

  // Scheduling.
  bool exhausted = false;   // the last read for new entries found none
  int weight = 1;           // priority + 1
  int current = 0;          // smooth weighted round-robin state (between the campaigns of its tenant)
  bool urgent = false;      // priority 9: the urgent lane

  // What the shard holds of it.
  std::size_t held = 0;                // slots holding its entries
  std::vector<std::uint32_t> to_record;  // slots whose outcome waits for the recorder
  metrics::campaign_handle series;     // its counters in /metrics

  bool served() const { return mode != serve_mode::not_served && active && !quiet; }
  bool recovering() const { return !recover.empty() || !own_recovered || recover_after_drain; }
  // Readable now without waiting: served, its backlog taken up, and not found empty last time.
  bool readable() const { return served() && !path_down && !recovering() && !exhausted; }
  // Its stream may be read (new entries, its backlog, a take-over) once slots are free.
  bool takes_reads() const { return served() && !path_down; }
};

}  // namespace budstikke::engine
