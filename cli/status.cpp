#include "cli/status.hpp"

#include <iostream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "queue/campaign_store.hpp"
#include "support/json.hpp"
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

}  // namespace

int status_command(const config& cfg, const status_options& opt) {
  queue::keys keys(cfg.key_prefix);
  std::string error;
  std::vector<queue::campaign_status> rows;
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
    co_return std::error_code{};
  }());
  if (ec) {
    std::cerr << "error: " << error << "\n";
    return missing ? exit_usage : exit_runtime;
  }
  if (opt.json) {
    for (const auto& s : rows) std::cout << support::json_line(status_json(s));
    return exit_ok;
  }
  if (rows.empty()) {
    std::cout << "no campaigns\n";
    return exit_ok;
  }
  std::cout << fmt::format("{:<24} {:<9} {:<6} {:>9} {:>9} {:>7} {:>8} {:>9} {:>9} {:>9} {:>8}\n", "CAMPAIGN", "STATE",
                           "CHAN", "TOTAL", "SENT", "FAILED", "SKIPPED", "AMBIGUOUS", "CANCELLED", "PENDING", "RETRYING");
  for (const auto& s : rows) {
    std::cout << fmt::format("{:<24} {:<9} {:<6} {:>9} {:>9} {:>7} {:>8} {:>9} {:>9} {:>9} {:>8}\n", s.id, s.state, s.channel,
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
