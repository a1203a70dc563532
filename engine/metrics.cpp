#include "engine/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>

#include <sys/resource.h>
#include <unistd.h>

#include <fmt/format.h>

#include "support/json.hpp"

namespace budstikke::engine::metrics {
namespace {

using queue::channel;

const std::vector<double>& latency_bounds() {
  static const std::vector<double> b{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,    2.5,  5,
                                     10,    30,   60,    120,  300, 600,  1800, 3600, 7200};
  return b;
}

const std::vector<double>& roundtrip_bounds() {
  static const std::vector<double> b{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
  return b;
}

const std::vector<double>& wait_bounds() {
  static const std::vector<double> b{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60};
  return b;
}

// 100 µs to about 3 h in steps of 5 %: quantiles good to a few percent.
std::vector<double> fine_bounds() { return exponential_bounds(1e-4, 1.05, 360); }

constexpr channel all_channels[] = {channel::email, channel::sms};
constexpr adapters::outcome all_results[] = {adapters::outcome::accepted, adapters::outcome::transient,
                                             adapters::outcome::permanent, adapters::outcome::ambiguous,
                                             adapters::outcome::unsent};
constexpr const char* limiter_names[] = {"global", "adapter", "domain", "tenant"};

// Label values: backslash, double quote and line feed escaped (the text format's rules).
std::string label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void histogram_lines(std::string& out, std::string_view name, const std::string& labels, const histogram& h) {
  auto s = h.read();
  std::string sep = labels.empty() ? "" : ",";
  for (std::size_t i = 0; i < s.bounds.size(); ++i)
    out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, number(s.bounds[i]), s.cumulative[i]);
  out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, s.count);
  std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, braces, number(s.sum), name, braces, s.count);
}

std::int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long long pages_total = 0, pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident)) return 0;
  return pages_resident * ::sysconf(_SC_PAGESIZE);
}

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::vector<histogram> histograms(std::size_t n, const std::vector<double>& bounds) {
  std::vector<histogram> v;
  v.reserve(n);
  for (std::size_t i = 0; i < n; ++i) v.emplace_back(bounds);
  return v;
}

}  // namespace

std::string_view adapter_name(queue::channel ch) { return ch == channel::email ? "smtp" : "sms_http"; }

std::optional<std::int64_t> entry_time_ms(std::string_view entry_id) {
  auto dash = entry_id.find('-');
  if (dash == std::string_view::npos || dash == 0) return std::nullopt;
  std::int64_t ms = 0;
  auto [end, ec] = std::from_chars(entry_id.data(), entry_id.data() + dash, ms);
  if (ec != std::errc{} || end != entry_id.data() + dash) return std::nullopt;
  return ms;
}

std::vector<double> exponential_bounds(double start, double factor, std::size_t count) {
  std::vector<double> b;
  b.reserve(count);
  for (double v = start; b.size() < count; v *= factor) b.push_back(v);
  return b;
}

histogram::histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), cells_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 2)) {}

void histogram::observe(double value) noexcept {
  if (!(value > 0)) value = 0;  // also NaN
  auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  cells_[i].fetch_add(1, std::memory_order_relaxed);
  cells_[bounds_.size() + 1].fetch_add(static_cast<std::uint64_t>(std::min(value, 1e12) * 1e6),
                                       std::memory_order_relaxed);
}

histogram::snapshot histogram::read() const {
  snapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += cells_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.count = running;
  s.sum = static_cast<double>(cells_[bounds_.size() + 1].load(std::memory_order_relaxed)) / 1e6;
  return s;
}

double histogram::snapshot::quantile(double q) const {
  if (count == 0) return 0;
  double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(count);
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (static_cast<double>(cumulative[i]) >= rank) {
      double lower = i == 0 ? 0 : bounds[i - 1];
      std::uint64_t below = i == 0 ? 0 : cumulative[i - 1];
      std::uint64_t in_bucket = cumulative[i] - below;
      if (in_bucket == 0) return lower;
      return lower + (bounds[i] - lower) * ((rank - static_cast<double>(below)) / static_cast<double>(in_bucket));
    }
  }
  return bounds.empty() ? 0 : bounds.back();
}

registry::registry(registry_options opt)
    : opt_(opt),
      accepted_(histograms(channel_count, latency_bounds())),
      roundtrip_(histograms(channel_count, roundtrip_bounds())),
      queue_lag_(histograms(channel_count, latency_bounds())),
      limiter_wait_(histograms(limiter_count, wait_bounds())),
      accepted_fine_(fine_bounds()),
      roundtrip_fine_(fine_bounds()),
      started_(std::chrono::system_clock::now()) {}

campaign_handle registry::campaign(std::string_view id, std::string_view tenant, queue::channel ch,
                                   std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  prune(now);
  std::string key = fmt::format("{}{}{}", static_cast<int>(ch), '\0', id);
  if (auto it = campaigns_.find(key); it != campaigns_.end()) {
    it->second.unused_since.reset();
    return it->second.series;
  }
  std::string tenant_name(tenant);
  if (!tenant_names_.count(tenant_name)) {
    if (tenant_names_.size() >= opt_.max_tenants) tenant_name = "_other";
    else tenant_names_.insert(tenant_name);
  }
  auto& tenant_counters = tenants_[{tenant_name, ch}];
  if (!tenant_counters) tenant_counters = std::make_shared<state_counters>();
  if (campaigns_.size() >= opt_.max_campaign_series) {
    // Over the bound: counted for the tenant, but without a campaign series of its own.
    return std::make_shared<campaign_series>(tenant_counters);
  }
  auto series = std::make_shared<campaign_series>(tenant_counters);
  campaigns_.emplace(std::move(key), campaign_entry{series, std::string(id), tenant_name, ch, std::nullopt});
  return series;
}

void registry::prune(std::chrono::steady_clock::time_point now) {
  for (auto it = campaigns_.begin(); it != campaigns_.end();) {
    auto& e = it->second;
    if (e.series.use_count() > 1) {
      e.unused_since.reset();
    } else if (!e.unused_since) {
      e.unused_since = now;
    } else if (now - *e.unused_since >= opt_.campaign_retention) {
      it = campaigns_.erase(it);
      continue;
    }
    ++it;
  }
}

bool registry::ready() const {
  auto n = expected_shards_.load(std::memory_order_relaxed);
  if (n == 0) return false;
  for (std::size_t i = 0; i < n && i < max_shards; ++i)
    if (!shards_[i].ready.load(std::memory_order_relaxed)) return false;
  return true;
}

void registry::path_state(std::size_t shard, std::string_view kind, std::string_view name, bool usable) {
  std::lock_guard lock(mutex_);
  auto key = fmt::format("{} {}", kind, name);
  auto it = paths_.find(key);
  if (it == paths_.end()) it = paths_.emplace(key, path_entry{std::string(kind), std::string(name), {}, 0}).first;
  auto& p = it->second;
  if (usable) {
    p.down_in.erase(shard);
  } else {
    if (p.down_in.empty()) ++p.suspensions;
    p.down_in.insert(shard);
  }
}

void registry::adapter_result(queue::channel ch, adapters::outcome o) noexcept {
  results_[static_cast<std::size_t>(ch)][static_cast<std::size_t>(o)].fetch_add(1, std::memory_order_relaxed);
}

void registry::observe_enqueue_to_accepted(queue::channel ch, double seconds) noexcept {
  accepted_[static_cast<std::size_t>(ch)].observe(seconds);
  accepted_fine_.observe(seconds);
}

void registry::observe_relay_roundtrip(queue::channel ch, double seconds) noexcept {
  roundtrip_[static_cast<std::size_t>(ch)].observe(seconds);
  roundtrip_fine_.observe(seconds);
}

void registry::observe_queue_lag(queue::channel ch, double seconds) noexcept {
  queue_lag_[static_cast<std::size_t>(ch)].observe(seconds);
}

void registry::observe_rate_limiter_wait(limiter l, double seconds) noexcept {
  limiter_wait_[static_cast<std::size_t>(l)].observe(seconds);
}

std::string registry::render_prometheus(std::chrono::steady_clock::time_point now) {
  std::string out;
  out.reserve(16 * 1024);
  const auto shards = std::min(expected_shards_.load(std::memory_order_relaxed), max_shards);

  {
    std::lock_guard lock(mutex_);
    prune(now);
    header(out, "budstikke_messages_total", "counter",
           "Recipients recorded in a final state, by tenant, channel, adapter and outcome");
    for (const auto& [key, counters] : tenants_) {
      auto labels = fmt::format("tenant=\"{}\",channel=\"{}\",adapter=\"{}\"", label(key.first),
                                queue::to_string(key.second), adapter_name(key.second));
      for (auto st : queue::all_final_states)
        out += fmt::format("budstikke_messages_total{{{},outcome=\"{}\"}} {}\n", labels, queue::to_string(st),
                           (*counters)[static_cast<std::size_t>(st)].load(std::memory_order_relaxed));
    }
    header(out, "budstikke_campaign_messages_total", "counter",
           "Recipients recorded in a final state by this process, per campaign being served (dropped a while after it leaves the registry)");
    for (const auto& [key, e] : campaigns_) {
      auto labels = fmt::format("campaign=\"{}\",tenant=\"{}\",channel=\"{}\",adapter=\"{}\"", label(e.campaign),
                                label(e.tenant), queue::to_string(e.ch), adapter_name(e.ch));
      for (auto st : queue::all_final_states)
        out += fmt::format("budstikke_campaign_messages_total{{{},outcome=\"{}\"}} {}\n", labels,
                           queue::to_string(st), e.series->count(st));
    }
  }

  header(out, "budstikke_adapter_results_total", "counter",
         "Answers from relays and gateways: accepted, transient (retried), permanent, ambiguous, unsent (the path "
         "failed: handed back, not an attempt)");
  for (auto ch : all_channels)
    for (auto r : all_results)
      out += fmt::format("budstikke_adapter_results_total{{channel=\"{}\",adapter=\"{}\",result=\"{}\"}} {}\n",
                         queue::to_string(ch), adapter_name(ch), adapters::to_string(r),
                         results_[static_cast<std::size_t>(ch)][static_cast<std::size_t>(r)].load(std::memory_order_relaxed));

  header(out, "budstikke_slots_held", "gauge", "Messages in flight per shard: read from Redis, outcome not yet recorded");
  for (std::size_t i = 0; i < shards; ++i)
    out += fmt::format("budstikke_slots_held{{shard=\"{}\"}} {}\n", i, shards_[i].slots_held.load(std::memory_order_relaxed));
  header(out, "budstikke_messages_on_wire", "gauge", "Messages per shard handed to an adapter and not yet answered");
  for (std::size_t i = 0; i < shards; ++i)
    out += fmt::format("budstikke_messages_on_wire{{shard=\"{}\"}} {}\n", i, shards_[i].on_wire.load(std::memory_order_relaxed));
  header(out, "budstikke_shard_ready", "gauge", "1 when the shard has reached Redis and is pulling");
  for (std::size_t i = 0; i < shards; ++i)
    out += fmt::format("budstikke_shard_ready{{shard=\"{}\"}} {}\n", i, shards_[i].ready.load(std::memory_order_relaxed) ? 1 : 0);

  {
    std::lock_guard lock(mutex_);
    header(out, "budstikke_path_up", "gauge",
           "1 while a relay or the SMS gateway is usable, 0 while it is suspended (probed with backoff)");
    for (const auto& [key, p] : paths_)
      out += fmt::format("budstikke_path_up{{kind=\"{}\",path=\"{}\"}} {}\n", p.kind, p.name, p.down_in.empty() ? 1 : 0);
    header(out, "budstikke_path_suspensions_total", "counter", "Times a relay or the SMS gateway was suspended");
    for (const auto& [key, p] : paths_)
      out += fmt::format("budstikke_path_suspensions_total{{kind=\"{}\",path=\"{}\"}} {}\n", p.kind, p.name,
                         p.suspensions);
  }

  const std::int64_t retry_size = retry_set_size_.load(std::memory_order_relaxed);
  header(out, "budstikke_retry_set_size", "gauge", "Messages waiting for a retry after a temporary failure");
  out += fmt::format("budstikke_retry_set_size {}\n", retry_size);

  header(out, "budstikke_enqueue_to_accepted_seconds", "histogram",
         "From the enqueue (the stream entry's time) to the relay or gateway accepting the message");
  for (auto ch : all_channels)
    histogram_lines(out, "budstikke_enqueue_to_accepted_seconds", fmt::format("channel=\"{}\"", queue::to_string(ch)),
                    accepted_[static_cast<std::size_t>(ch)]);
  header(out, "budstikke_relay_roundtrip_seconds", "histogram",
         "From handing a message to the adapter to its answer (relay or gateway latency, incl. its queueing)");
  for (auto ch : all_channels)
    histogram_lines(out, "budstikke_relay_roundtrip_seconds",
                    fmt::format("channel=\"{}\",adapter=\"{}\"", queue::to_string(ch), adapter_name(ch)),
                    roundtrip_[static_cast<std::size_t>(ch)]);
  header(out, "budstikke_queue_lag_seconds", "histogram", "From the enqueue to the engine reading the entry");
  for (auto ch : all_channels)
    histogram_lines(out, "budstikke_queue_lag_seconds", fmt::format("channel=\"{}\"", queue::to_string(ch)),
                    queue_lag_[static_cast<std::size_t>(ch)]);
  header(out, "budstikke_rate_limiter_wait_seconds", "histogram", "How long messages waited for a rate limiter's token");
  for (std::size_t l = 0; l < limiter_count; ++l)
    histogram_lines(out, "budstikke_rate_limiter_wait_seconds", fmt::format("limiter=\"{}\"", limiter_names[l]),
                    limiter_wait_[l]);

  header(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes");
  out += fmt::format("process_resident_memory_bytes {}\n", resident_bytes());
  header(out, "process_cpu_seconds_total", "counter", "User and system CPU time in seconds");
  out += fmt::format("process_cpu_seconds_total {}\n", number(cpu_seconds()));
  header(out, "process_start_time_seconds", "gauge", "Start time of the process since the epoch in seconds");
  out += fmt::format("process_start_time_seconds {}\n",
                     std::chrono::duration_cast<std::chrono::seconds>(started_.time_since_epoch()).count());
  return out;
}

boost::json::object quantiles_json(const histogram::snapshot& s) {
  boost::json::object o;
  o["count"] = s.count;
  o["p50"] = support::rounded(s.quantile(0.5), 4);
  o["p95"] = support::rounded(s.quantile(0.95), 4);
  o["p99"] = support::rounded(s.quantile(0.99), 4);
  return o;
}

registry& global() {
  static registry r;
  return r;
}

}  // namespace budstikke::engine::metrics
