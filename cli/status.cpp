#include "cli/status.hpp"

#include <algorithm>
#include <iostream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "queue/campaign_store.hpp"
#include "queue/consumer.hpp"
#include "queue/paths.hpp"
#include "support/json.hpp"
#include "support/rfc3339.hpp"
#include "support/run_sync.hpp"

#include "cli/watch.hpp"

namespace budstikke::cli {
namespace asio = boost::asio;
using support::run_sync;

namespace {

// `status --json`: one object per campaign, its fields in this order.
boost::json::object status_json(const queue::campaign_status& s) {
  boost::json::object o;
  o["id"] = s.id;
  o["state"] = s.state;
  o["channel"] = s.channel;
  o["category"] = s.category;
  o["tenant"] = s.tenant;
  o["priority"] = s.priority;
  o["total"] = s.total ? boost::json::value(*s.total) : boost::json::value(nullptr);
  o["enqueued"] = s.enqueued;
  for (auto st : queue::all_final_states) o[queue::to_string(st)] = s.count(st);
  o["cancelled"] = s.cancelled();
  o["resent"] = s.resent;
  o["pending"] = s.pending();
  o["retrying"] = s.waiting_retry();
  o["dead_letters"] = s.dead_letters;
  o["created_at"] = s.created_at;
  o["finished_at"] = s.finished_at.empty() ? boost::json::value(nullptr) : boost::json::value(s.finished_at);
  return o;
}

// The channel a path serves, as `status` names channels.
std::string_view channel_of_path(std::string_view kind) { return kind == "sms" ? "sms" : "email"; }

// "suspended since 04:00:21, connection refused, next probe in 8 s" or "up".
std::string describe_path(const queue::path_state& p, std::int64_t now_ms) {
  if (p.usable) return "up";
  // RFC 3339 in UTC: "2026-12-02T04:00:21.123Z"; the time of day is what a person wants here.
  const auto since = support::rfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(p.since_ms)));
  std::string s = fmt::format("suspended since {} UTC", since.substr(11, 8));
  if (!p.reason.empty()) s += ", " + p.reason;
  const auto left = p.next_probe_ms - now_ms;
  s += left > 0 ? fmt::format(", next probe in {} s", (left + 999) / 1000) : std::string(", probing");
  return s;
}

boost::json::object path_json(const queue::path_state& p, std::int64_t now_ms) {
  boost::json::object o;
  o["kind"] = p.kind;
  o["path"] = p.path;
  o["state"] = p.usable ? "up" : "suspended";
  if (!p.usable) {
    o["since"] = support::rfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(p.since_ms)));
    o["reason"] = p.reason;
    o["next_probe_in_s"] = support::rounded(std::max<double>(0, static_cast<double>(p.next_probe_ms - now_ms) / 1000.0), 1);
  }
  return o;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The paths (relays, the SMS gateway) as the engine's live shards last reported them.
asio::awaitable<std::error_code> read_paths(queue::connection& conn, const queue::keys& keys,
                                            std::vector<queue::path_state>& out) {
  queue::request req;
  queue::append_read_path_reports(req, keys);
  std::vector<queue::reply_ptr> replies;
  if (auto ec = co_await conn.async_exec(req, replies)) co_return ec;
  auto reports = queue::parse_path_reports(replies[0].get());
  if (reports.empty()) co_return std::error_code{};
  req.clear();
  for (const auto& r : reports) queue::append_consumer_alive(req, keys, r.consumer);
  replies.clear();
  if (auto ec = co_await conn.async_exec(req, replies)) co_return ec;
  std::vector<bool> alive;
  for (const auto& r : replies) alive.push_back(queue::parse_alive(r.get()));
  out = queue::merge_path_reports(reports, alive);
  co_return std::error_code{};
}

// One line per path a live engine reports, before the campaigns.
void print_paths(const std::vector<queue::path_state>& paths) {
  const auto now = now_ms();
  for (const auto& p : paths)
    std::cout << fmt::format("{} {} {}: {}\n", channel_of_path(p.kind), p.kind == "sms" ? "gateway" : "relay", p.path,
                             describe_path(p, now));
  if (!paths.empty()) std::cout << "\n";
}

}  // namespace

int status_command(const config& cfg, const status_options& opt) {
  queue::keys keys(cfg.key_prefix);
  std::string error;
  std::vector<queue::campaign_status> rows;
  std::vector<queue::path_state> paths;
  bool missing = false;
  auto ec = run_sync([&]() -> asio::awaitable<std::error_code> {
    auto ex = co_await asio::this_coro::executor;
    queue::connection conn(ex, cfg.redis);
    std::vector<std::string> ids;
    if (auto ec = co_await queue::async_list_campaigns(conn, keys, false, ids, opt.campaign)) {
      error = queue::redis_failure(cfg.redis, ec).message;
      co_return ec;
    }
    for (const auto& id : ids) {
      auto s = co_await queue::async_read_status(conn, keys, id);
      if (!s) {
        error = s.error().message;
        missing = s.error().code == queue::campaign_missing && opt.campaign;
        co_return s.error().code;
      }
      rows.push_back(std::move(*s));
    }
    if (auto ec = co_await read_paths(conn, keys, paths)) {
      error = queue::redis_failure(cfg.redis, ec).message;
      co_return ec;
    }
    co_return std::error_code{};
  }());
  if (ec) {
    std::cerr << "error: " << error << "\n";
    return missing ? exit_usage : exit_runtime;
  }
  if (opt.json) {
    const auto now = now_ms();
    for (const auto& s : rows) {
      auto o = status_json(s);
      boost::json::array on_path;  // the paths of the campaign's channel
      for (const auto& p : paths)
        if (channel_of_path(p.kind) == s.channel) on_path.push_back(path_json(p, now));
      o["paths"] = std::move(on_path);
      std::cout << support::json_line(o);
    }
    return exit_ok;
  }
  print_paths(paths);
  if (rows.empty()) {
    std::cout << "no campaigns\n";
    return exit_ok;
  }
  // The first column as wide as the longest id (at least 24): `send-20261202T173000Z-3fa9c1` is 28.
  std::size_t width = 24;
  for (const auto& s : rows) width = std::max(width, s.id.size());
  std::cout << fmt::format("{:<{}} {:<9} {:<6} {:>9} {:>9} {:>7} {:>8} {:>9} {:>9} {:>9} {:>8}\n", "CAMPAIGN", width,
                           "STATE", "CHAN", "TOTAL", "SENT", "FAILED", "SKIPPED", "AMBIGUOUS", "CANCELLED", "PENDING",
                           "RETRYING");
  for (const auto& s : rows) {
    std::cout << fmt::format("{:<{}} {:<9} {:<6} {:>9} {:>9} {:>7} {:>8} {:>9} {:>9} {:>9} {:>8}\n", s.id, width, s.state, s.channel,
                             s.total ? std::to_string(*s.total) : "(open)", s.count(queue::final_state::sent),
                             s.count(queue::final_state::failed), s.count(queue::final_state::skipped),
                             s.count(queue::final_state::ambiguous), s.cancelled(), s.pending(), s.waiting_retry());
  }
  return exit_ok;
}

void add_status(CLI::App& app, action& chosen) {
  struct options {
    common_options common;
    status_options st;
    bool watch = false;
    double interval = 1.0;
    watch_options w;
  };
  auto o = std::make_shared<options>();
  auto* cmd = app.add_subcommand("status", "Show campaigns and their counts");
  add_common(cmd, o->common);
  cmd->add_option("--campaign", o->st.campaign, "One campaign");
  cmd->add_flag("--json", o->st.json, "One JSON object per campaign and line");
  cmd->add_flag("--watch", o->watch, "Live view: progress bar, rate, ETA and counts (plain lines when stdout is not a terminal)");
  cmd->add_option("--interval", o->interval, "Seconds between refreshes with --watch")->check(CLI::Range(0.1, 3600.0))->capture_default_str();
  cmd->add_flag("--until-idle", o->w.until_idle, "With --watch: exit 0 once no shown campaign is active");
  cmd->callback([&chosen, o] {
    chosen = [o] {
      if (!o->watch) return status_command(resolve_config(o->common), o->st);
      if (o->st.json) throw config_error("--watch and --json do not go together");
      o->w.campaign = o->st.campaign;
      o->w.interval = std::chrono::milliseconds(static_cast<long long>(o->interval * 1000));
      return watch_command(resolve_config(o->common), o->w);
    };
  });
}

}  // namespace budstikke::cli
