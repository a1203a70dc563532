#include "cli/watch.hpp"

#include <csignal>
#include <deque>
#include <iostream>
#include <map>

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>

#include "cli/command.hpp"
#include "queue/campaign_store.hpp"
#include "support/rfc3339.hpp"

namespace budstikke::cli {
namespace asio = boost::asio;

namespace {

using clock = std::chrono::steady_clock;
using queue::final_state;

constexpr auto rate_window = std::chrono::seconds(10);  // the rate is measured over this
constexpr std::size_t max_finished_shown = 5;          // finished campaigns kept in the live view
constexpr int bar_width = 30;

struct tracked {
  queue::campaign_status s;
  std::deque<std::pair<clock::time_point, std::int64_t>> samples;  // (when, done)
  bool final = false;           // left the registry: its counts no longer change
  bool final_printed = false;

  void add_sample(clock::time_point now) {
    samples.emplace_back(now, s.done());
    while (samples.size() > 2 && now - samples[1].first >= rate_window) samples.pop_front();
  }
  double rate() const {
    if (samples.size() < 2) return 0;
    double dt = std::chrono::duration<double>(samples.back().first - samples.front().first).count();
    return dt > 0 ? static_cast<double>(samples.back().second - samples.front().second) / dt : 0;
  }
  std::int64_t target() const { return s.total ? *s.total : s.enqueued; }
  double fraction() const {
    return target() > 0 ? std::min(1.0, static_cast<double>(s.done()) / static_cast<double>(target())) : 0;
  }
  std::optional<double> eta_seconds() const {
    double r = rate();
    if (s.state != "active" || r <= 0 || s.pending() <= 0) return std::nullopt;
    return static_cast<double>(s.pending()) / r;
  }
};

std::string grouped(std::int64_t n) {
  auto digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return n < 0 ? "-" + out : out;
}

std::string clock_text(double seconds) {
  auto s = static_cast<std::int64_t>(seconds + 0.5);
  if (s >= 100 * 3600) return ">99h";
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string bar(double fraction) {
  int full = static_cast<int>(fraction * bar_width + 0.5);
  std::string out;
  for (int i = 0; i < bar_width; ++i) out += i < full ? "█" : "░";
  return out;
}

std::string tty_frame(const std::vector<const tracked*>& rows, std::chrono::milliseconds interval,
                      const std::string& error) {
  std::string out = fmt::format("budstikke status  {}  every {:.1f} s, Ctrl-C to quit\n", support::now_rfc3339(),
                                static_cast<double>(interval.count()) / 1000.0);
  if (!error.empty()) out += "error: " + error + "\n";
  if (rows.empty()) out += "no active campaigns\n";
  std::size_t id_width = 12;
  for (const auto* t : rows) id_width = std::max(id_width, t->s.id.size());
  for (const auto* t : rows) {
    const auto& s = t->s;
    auto eta = t->eta_seconds();
    out += fmt::format("{:<{}}  {:<9} {}  {:5.1f} %  {} / {}{}  {:>9}/s  ETA {}\n", s.id, id_width, s.state,
                       bar(t->fraction()), 100.0 * t->fraction(), grouped(s.done()), grouped(t->target()),
                       s.total ? "" : " (open)", grouped(static_cast<std::int64_t>(t->rate() + 0.5)),
                       eta ? clock_text(*eta) : "-");
    out += fmt::format("{:<{}}  sent {}  failed {}  skipped {}  ambiguous {}  pending {}\n", "", id_width,
                       grouped(s.count(final_state::sent)), grouped(s.count(final_state::failed)),
                       grouped(s.count(final_state::skipped)), grouped(s.count(final_state::ambiguous)),
                       grouped(s.pending()));
  }
  return out;
}

// key=value, one line per campaign: easy to grep and to parse.
std::string plain_line(const tracked& t) {
  const auto& s = t.s;
  auto eta = t.eta_seconds();
  return fmt::format(
      "{} campaign={} state={} done={} total={} percent={:.1f} sent={} failed={} skipped={} ambiguous={} "
      "pending={} rate={:.0f}/s eta={}\n",
      support::now_rfc3339(), s.id, s.state, s.done(), s.total ? std::to_string(*s.total) : "open",
      100.0 * t.fraction(), s.count(final_state::sent), s.count(final_state::failed),
      s.count(final_state::skipped), s.count(final_state::ambiguous), s.pending(), t.rate(),
      eta ? fmt::format("{:.0f}s", *eta) : "-");
}

// Lines in a frame (for moving the cursor back over it).
std::size_t line_count(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

asio::awaitable<int> watch_loop(const config& cfg, const watch_options& opt, bool tty) {
  auto ex = co_await asio::this_coro::executor;
  queue::connection conn(ex, cfg.redis);
  queue::keys keys(cfg.key_prefix);
  std::map<std::string, tracked, std::less<>> shown;
  std::deque<std::string> finished_order;
  asio::steady_timer timer(ex);
  std::size_t lines_drawn = 0;
  for (bool first = true;; first = false) {
    std::string error;
    std::vector<std::string> ids;
    if (auto ec = co_await queue::async_list_campaigns(conn, keys, true, ids, opt.campaign)) {
      error = queue::redis_failure(cfg.redis, ec).message;
    }
    // Campaigns that left the registry are read once more, for their final counts.
    if (error.empty())
      for (auto& [id, t] : shown)
        if (!t.final && std::find(ids.begin(), ids.end(), id) == ids.end()) {
          ids.push_back(id);
          t.final = true;
          finished_order.push_back(id);
        }
    const auto now = clock::now();
    for (const auto& id : ids) {
      auto s = co_await queue::async_read_status(conn, keys, id);
      if (!s) {
        if (first && opt.campaign && s.error().code == queue::campaign_missing) {
          std::cerr << "error: " << s.error().message << "\n";
          co_return exit_usage;
        }
        error = s.error().message;
        continue;
      }
      auto& t = shown[id];
      t.s = std::move(*s);
      if (opt.campaign && t.s.state != "active" && t.s.state != "paused") t.final = true;
      t.add_sample(now);
    }
    while (finished_order.size() > max_finished_shown) {
      shown.erase(finished_order.front());
      finished_order.pop_front();
    }

    std::vector<const tracked*> rows;
    for (const auto& [id, t] : shown) rows.push_back(&t);
    if (tty) {
      auto frame = tty_frame(rows, opt.interval, error);
      if (lines_drawn > 0) std::cout << "\x1b[" << lines_drawn << "F\x1b[J";
      std::cout << frame << std::flush;
      lines_drawn = line_count(frame);
    } else {
      if (!error.empty()) std::cout << support::now_rfc3339() << " error=\"" << error << "\"\n";
      for (auto& [id, t] : shown) {
        if (t.final_printed) continue;
        std::cout << plain_line(t);
        if (t.final) t.final_printed = true;
      }
      std::cout << std::flush;
    }

    if (opt.until_idle && error.empty() &&
        std::none_of(shown.begin(), shown.end(), [](const auto& kv) { return !kv.second.final && kv.second.s.state == "active"; }))
      co_return exit_ok;
    timer.expires_after(opt.interval);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace

int watch_command(const config& cfg, const watch_options& opt) {
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  asio::io_context ioc(1);
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  int code = exit_ok;
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (!ec) ioc.stop();  // Ctrl-C: leave at once, even in the middle of a Redis round trip
  });
  if (tty) std::cout << "\x1b[?25l";  // no blinking cursor over the bars
  asio::co_spawn(ioc, watch_loop(cfg, opt, tty), [&](std::exception_ptr e, int result) {
    signals.cancel();
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        std::cerr << "error: " << ex.what() << "\n";
      }
      code = exit_runtime;
    } else {
      code = result;
    }
  });
  ioc.run();
  if (tty) std::cout << "\x1b[?25h" << std::flush;
  return code;
}

}  // namespace budstikke::cli
