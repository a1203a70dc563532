// Process-wide metrics: counters, gauges and fixed-bucket histograms that the shards (threads)
// update with relaxed atomics, rendered in the Prometheus text format by the admin server.
//
// Label sets are bounded: `shard` by engine.workers, `channel`/`adapter`/`outcome` by their
// enums, `tenant` by max_tenants (more tenants share the value "_other"), `campaign` by the
// campaigns shards serve now — a campaign's series is dropped `campaign_retention` after the
// last shard let go of it (it left the registry), and at most max_campaign_series exist.
// No label ever carries an address or a phone number.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "adapters/delivery.hpp"
#include "queue/schema.hpp"

namespace budstikke::engine::metrics {

inline constexpr std::size_t channel_count = 2;   // queue::channel
inline constexpr std::size_t state_count = 4;     // queue::final_state
inline constexpr std::size_t result_count = adapters::outcome_count;
inline constexpr std::size_t max_shards = 256;    // engine.workers' bound

// The adapter that serves a channel, as the `adapter` label names it.
std::string_view adapter_name(queue::channel ch);

// Milliseconds since the epoch in a stream entry id ("<ms>-<seq>"); nullopt if it is not one.
std::optional<std::int64_t> entry_time_ms(std::string_view entry_id);

// Upper bounds start, start*factor, ... (count of them).
std::vector<double> exponential_bounds(double start, double factor, std::size_t count);

// A histogram with fixed upper bounds (ascending, in seconds; +Inf is implied). Lock-free.
class histogram {
 public:
  explicit histogram(std::vector<double> upper_bounds);
  void observe(double value) noexcept;  // negative values count as 0

  struct snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  // per bound, then +Inf (= count)
    double sum = 0;
    std::uint64_t count = 0;
    // Linear interpolation inside the bucket holding rank q*count; 0 when empty, the last
    // finite bound when the rank is in the +Inf bucket.
    double quantile(double q) const;
  };
  snapshot read() const;

 private:
  std::vector<double> bounds_;
  // One per bound, then +Inf, then the sum in microseconds (integer atomics are lock-free).
  // On the heap, so that a histogram can move.
  std::unique_ptr<std::atomic<std::uint64_t>[]> cells_;
};

// What one shard sets as it works; read at scrape time. One cache line each.
struct alignas(64) shard_cell {
  std::atomic<std::int64_t> slots_held{0};       // read, not yet recorded (engine.window bounds it)
  std::atomic<std::int64_t> on_wire{0};          // pushed to the adapter, no outcome yet
  std::atomic<bool> ready{false};                // has reached Redis and is pulling
};

using state_counters = std::array<std::atomic<std::uint64_t>, state_count>;

// The counters of one campaign (and of its tenant), held by the shards that serve it.
class campaign_series {
 public:
  campaign_series(std::shared_ptr<state_counters> tenant) : tenant_(std::move(tenant)) {}
  void record(queue::final_state s) noexcept {
    auto i = static_cast<std::size_t>(s);
    own_[i].fetch_add(1, std::memory_order_relaxed);
    (*tenant_)[i].fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t count(queue::final_state s) const { return own_[static_cast<std::size_t>(s)].load(std::memory_order_relaxed); }

 private:
  state_counters own_{};
  std::shared_ptr<state_counters> tenant_;
};
using campaign_handle = std::shared_ptr<campaign_series>;

// Rate limiters (engine/ rate limiting): which bucket made a message wait.
enum class limiter : std::uint8_t { global, adapter, domain, tenant };
inline constexpr std::size_t limiter_count = 4;

struct registry_options {
  std::chrono::steady_clock::duration campaign_retention = std::chrono::minutes(10);
  std::size_t max_campaign_series = 1000;
  std::size_t max_tenants = 100;
};

class registry {
 public:
  explicit registry(registry_options opt = {});
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  // Series for a campaign a shard starts serving; the same series for every shard. Not on the
  // per-message path (a mutex).
  campaign_handle campaign(std::string_view id, std::string_view tenant, queue::channel ch,
                           std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

  // The cell of shard `index` (< max_shards); `expect_shards` says how many must be ready.
  shard_cell& shard(std::size_t index) { return shards_[index]; }
  void expect_shards(std::size_t n) { expected_shards_.store(n, std::memory_order_relaxed); }
  bool ready() const;

  // Per message.
  void adapter_result(queue::channel ch, adapters::outcome o) noexcept;
  void observe_enqueue_to_accepted(queue::channel ch, double seconds) noexcept;
  void observe_relay_roundtrip(queue::channel ch, double seconds) noexcept;
  void observe_queue_lag(queue::channel ch, double seconds) noexcept;
  // For the rate limiters: how long a message waited for a token.
  void observe_rate_limiter_wait(limiter l, double seconds) noexcept;
  // The retry sets' total size (ZCARD), as one shard of the process last saw it.
  void set_retry_set_size(std::int64_t n) noexcept { retry_set_size_.store(n, std::memory_order_relaxed); }
  // A shard's view of a path (a relay, the SMS gateway) changed. The process sees a path down
  // while any shard has it suspended; a suspension is counted when the first shard says so.
  void path_state(std::size_t shard, std::string_view kind, std::string_view name, bool usable);

  // The whole exposition, Prometheus text format 0.0.4. Also drops campaign series past retention.
  std::string render_prometheus(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

  // Fine-grained (about 5 %) distributions over every channel, for the run report's quantiles.
  histogram::snapshot enqueue_to_accepted() const { return accepted_fine_.read(); }
  histogram::snapshot relay_roundtrip() const { return roundtrip_fine_.read(); }

 private:
  struct campaign_entry {
    campaign_handle series;
    std::string campaign, tenant;
    queue::channel ch;
    std::optional<std::chrono::steady_clock::time_point> unused_since;
  };
  void prune(std::chrono::steady_clock::time_point now);  // mutex held

  registry_options opt_;
  std::array<shard_cell, max_shards> shards_{};
  std::atomic<std::size_t> expected_shards_{0};

  std::mutex mutex_;  // the maps below
  std::map<std::string, campaign_entry, std::less<>> campaigns_;  // key: channel + '\0' + id
  std::map<std::pair<std::string, queue::channel>, std::shared_ptr<state_counters>> tenants_;
  std::set<std::string, std::less<>> tenant_names_;

  std::array<std::array<std::atomic<std::uint64_t>, result_count>, channel_count> results_{};
  std::vector<histogram> accepted_, roundtrip_, queue_lag_;  // per channel
  std::vector<histogram> limiter_wait_;                      // per limiter
  histogram accepted_fine_, roundtrip_fine_;
  std::atomic<std::int64_t> retry_set_size_{0};
  struct path_entry {
    std::string kind, name;
    std::set<std::size_t> down_in;  // shards that have it suspended
    std::uint64_t suspensions = 0;
  };
  std::map<std::string, path_entry, std::less<>> paths_;  // key: kind + ' ' + name; mutex_
  std::chrono::system_clock::time_point started_;
};

// {"count":N,"p50":s,"p95":s,"p99":s} for a run report, in seconds to 4 places.
boost::json::object quantiles_json(const histogram::snapshot& s);

// The process's registry (the shards and the admin server use it; tests make their own).
registry& global();

}  // namespace budstikke::engine::metrics
