#include "bench/timeline.hpp"

#include <fstream>
#include <sstream>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "testpeers/http_client.hpp"
#include "support/process.hpp"

namespace budstikke::bench {
namespace fs = std::filesystem;

double sum_of(const std::string& exposition, const std::string& family) {
  double sum = 0;
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, family.size(), family) != 0 || line.size() <= family.size()) continue;
    char next = line[family.size()];
    if (next != '{' && next != ' ') continue;  // another family with this prefix
    auto space = line.rfind(' ');
    sum += std::strtod(line.c_str() + space + 1, nullptr);
  }
  return sum;
}

void timeline::sample() {
  auto r = testpeers::http_get({"127.0.0.1", port_}, "/metrics", std::chrono::milliseconds(400));
  if (!r || r->status != 200) return;
  auto now = std::chrono::steady_clock::now();
  if (!start_) start_ = now;
  points_.push_back({std::chrono::duration<double>(now - *start_).count(), sum_of(r->body, "budstikke_messages_total"),
                     sum_of(r->body, "budstikke_slots_held"), sum_of(r->body, "budstikke_messages_on_wire")});
}

std::int64_t timeline::peak_in_flight() const {
  double peak = 0;
  for (const auto& p : points_) peak = std::max(peak, p.held);
  return static_cast<std::int64_t>(peak);
}

std::string timeline::plot(const fs::path& png, const fs::path& work, const std::string& title) const {
  if (points_.size() < 2) return "too few samples of the engine's /metrics to plot";
  auto data = work / "timeline.dat";
  {
    std::ofstream out(data);
    out << "# seconds msg_per_s held on_wire\n";
    for (std::size_t i = 1; i < points_.size(); ++i) {
      const auto& a = points_[i - 1];
      const auto& b = points_[i];
      double rate = b.t > a.t ? (b.recorded - a.recorded) / (b.t - a.t) : 0;
      out << fmt::format("{:.3f} {:.1f} {:.0f} {:.0f}\n", b.t, rate, b.held, b.on_wire);
    }
  }
  auto script = work / "timeline.gp";
  std::ofstream(script) << fmt::format(
      "set terminal pngcairo size 1000,600 font ',10'\n"
      "set output '{}'\n"
      "set title \"{}\"\n"
      "set xlabel 'seconds'\nset ylabel 'messages per second'\nset y2label 'messages in flight'\n"
      "set ytics nomirror\nset y2tics\nset yrange [0:*]\nset y2range [0:*]\nset grid\nset key bottom right\n"
      "plot '{}' using 1:2 with lines lw 2 title 'throughput (msg/s)' axes x1y1, \\\n"
      "     '' using 1:3 with lines title 'in flight (read, not recorded)' axes x1y2, \\\n"
      "     '' using 1:4 with lines title 'on the wire' axes x1y2\n",
      fs::absolute(png).string(), title, data.string());
  try {
    auto gnuplot = support::child_process::spawn({"gnuplot", script.string()}, (work / "gnuplot.log").string());
    auto st = gnuplot.wait_for(std::chrono::seconds(60));
    if (!st) {
      gnuplot.stop();
      return "gnuplot did not finish within 60 s";
    }
    if (!st->exited_normally()) {
      std::ifstream log(work / "gnuplot.log");
      std::stringstream ss;
      ss << log.rdbuf();
      return "gnuplot failed: " + ss.str();
    }
  } catch (const std::exception& e) {
    return fmt::format("cannot run gnuplot (Debian package gnuplot-nox): {}", e.what());
  }
  return "";
}

std::optional<latency_report> read_latency_report(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  auto v = boost::json::parse(ss.str(), ec);
  if (ec || !v.is_object()) return std::nullopt;
  auto number = [](const boost::json::value* o, const char* key) -> double {
    if (!o || !o->is_object()) return 0;
    auto* f = o->as_object().if_contains(key);
    return f && f->is_number() ? f->to_number<double>() : 0;
  };
  const auto* accepted = v.as_object().if_contains("enqueue_to_accepted_s");
  const auto* relay = v.as_object().if_contains("relay_roundtrip_s");
  latency_report r;
  r.p50 = number(accepted, "p50");
  r.p95 = number(accepted, "p95");
  r.p99 = number(accepted, "p99");
  r.count = static_cast<std::uint64_t>(number(accepted, "count"));
  r.relay_p50 = number(relay, "p50");
  r.relay_p99 = number(relay, "p99");
  return r;
}

}  // namespace budstikke::bench
