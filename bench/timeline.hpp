// What `budstikke bench` learns from the engine while and after it runs: a timeline of its
// /metrics (messages recorded, in flight) sampled twice a second, drawn with gnuplot for --plot,
// and the latency quantiles of the engine's `run --report` file.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace budstikke::bench {

// Sum of every sample of `family` (name{labels} value lines) in a Prometheus text exposition.
double sum_of(const std::string& exposition, const std::string& family);

class timeline {
 public:
  static constexpr std::chrono::milliseconds interval{500};
  explicit timeline(std::uint16_t admin_port) : port_(admin_port) {}

  void sample();  // one scrape of /metrics; an engine not listening yet is skipped
  std::int64_t peak_in_flight() const;
  // Writes the data and a gnuplot script next to `png` in `work` and runs gnuplot (Debian's
  // gnuplot-nox): throughput (msg/s) and messages in flight over time. Returns "" or the problem.
  std::string plot(const std::filesystem::path& png, const std::filesystem::path& work, const std::string& title) const;

 private:
  struct point {
    double t;           // seconds since the first sample
    double recorded;    // budstikke_messages_total, all labels
    double held;        // budstikke_slots_held, all shards
    double on_wire;     // budstikke_messages_on_wire, all shards
  };
  std::uint16_t port_;
  std::optional<std::chrono::steady_clock::time_point> start_;
  std::vector<point> points_;
};

// From the engine's `run --report FILE`.
struct latency_report {
  double p50 = 0, p95 = 0, p99 = 0;  // seconds, enqueue to accepted
  std::uint64_t count = 0;
  double relay_p50 = 0, relay_p99 = 0;  // seconds, handed to the adapter to its answer
};
std::optional<latency_report> read_latency_report(const std::filesystem::path& file);

}  // namespace budstikke::bench
