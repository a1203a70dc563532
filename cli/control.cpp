#include "cli/control.hpp"

#include <iostream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>

#include "cli/command.hpp"
#include "queue/campaign_store.hpp"
#include "support/rfc3339.hpp"

#include <tuple>
#include <CLI/CLI.hpp>

namespace budstikke::cli {
namespace asio = boost::asio;

int control_command(const config& cfg, const std::string& campaign, control_action action) {
  const char* target = action == control_action::pause ? "paused" : action == control_action::resume ? "active" : "cancelled";
  std::vector<std::string_view> from;
  if (action == control_action::pause) from = {"active"};
  else if (action == control_action::resume) from = {"paused"};
  else from = {"active", "paused"};

  queue::keys keys(cfg.key_prefix);
  std::string found, error;
  bool exists = false;
  asio::io_context ioc(1);
  asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
    queue::connection conn(co_await asio::this_coro::executor, cfg.redis);
    queue::request req;
    queue::append_transition(req, keys, campaign, target, support::now_rfc3339(), from);
    std::vector<queue::reply_ptr> replies;
    if (auto ec = co_await conn.async_exec(req, replies)) {
      error = queue::redis_failure(cfg.redis, ec).message;
      co_return;
    }
    if (queue::is_error(replies[0].get())) {
      error = std::string(queue::as_string(replies[0].get()));
      co_return;
    }
    exists = !queue::is_nil(replies[0].get());
    found = std::string(queue::as_string(replies[0].get()));
  }, [&](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
  ioc.run();

  if (!error.empty()) {
    std::cerr << "error: " << error << "\n";
    return exit_runtime;
  }
  if (!exists) {
    std::cerr << fmt::format("error: campaign '{}' does not exist\n", campaign);
    return exit_usage;
  }
  if (std::find(from.begin(), from.end(), found) == from.end()) {
    std::cerr << fmt::format("error: campaign {} is {}; it cannot be {}\n", campaign, found,
                             action == control_action::pause ? "paused" : action == control_action::resume ? "resumed" : "cancelled");
    return exit_usage;
  }
  std::cout << fmt::format("campaign {}: {} -> {} (every engine notices within {} ms)\n", campaign, found, target,
                           cfg.engine.registry_interval.count());
  return exit_ok;
}

void add_control(CLI::App& app, action& chosen) {
  struct options {
    common_options common;
    std::string campaign;
  };
  auto o = std::make_shared<options>();
  for (auto [name, act, help] : {std::tuple{"pause", control_action::pause, "Stop sending a campaign (in-flight messages finish)"},
                                 std::tuple{"resume", control_action::resume, "Resume a paused campaign"},
                                 std::tuple{"cancel", control_action::cancel, "Cancel a campaign: recipients not yet sent are counted cancelled"}}) {
    auto* cmd = app.add_subcommand(name, help);
    add_common(cmd, o->common);
    cmd->add_option("--campaign", o->campaign, "Campaign id")->required();
    cmd->callback([&chosen, o, act = act] {
      chosen = [o, act] { return control_command(resolve_config(o->common), o->campaign, act); };
    });
  }
}

}  // namespace budstikke::cli
