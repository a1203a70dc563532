#include "cli/consent.hpp"

#include <iostream>

#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "engine/unsubscribe.hpp"
#include "support/run_sync.hpp"

namespace budstikke::cli {
namespace asio = boost::asio;
using namespace engine;

int consent_withdraw_command(const config& cfg, const consent_withdraw_options& opt) {
  const bool by_token = !opt.token.empty();
  if (by_token == !(opt.member.empty() && opt.channel.empty() && opt.category.empty())) {
    std::cerr << "error: give either --token, or --member, --channel and --category\n";
    return exit_usage;
  }
  auto result = support::run_sync([&]() -> asio::awaitable<withdrawal_result> {
    queue::connection conn(co_await asio::this_coro::executor, cfg.redis);
    if (by_token) co_return co_await apply_unsubscribe_token(conn, cfg, opt.token, opt.source);
    // A named object: GCC 12 destroys a temporary aggregate in a co_await expression twice.
    withdrawal w{opt.member, opt.channel, opt.category, opt.source};
    co_return co_await apply_withdrawal(conn, cfg, std::move(w));
  }());
  switch (result.status) {
    case withdrawal_status::withdrawn:
    case withdrawal_status::already:
      std::cout << fmt::format("member {}: {} consent for {} {}\n", result.what.member, result.what.channel,
                               result.what.category == "*" ? "every category" : result.what.category,
                               result.status == withdrawal_status::withdrawn ? "withdrawn" : "was already withdrawn");
      return exit_ok;
    case withdrawal_status::redis_error:
      std::cerr << "error: " << result.detail << "\n";
      return exit_runtime;
    default:
      std::cerr << fmt::format("error: {}: {}\n", to_string(result.status), result.detail);
      return exit_usage;
  }
}

void add_consent(CLI::App& app, action& chosen) {
  struct options {
    common_options common;
    consent_withdraw_options cw;
  };
  auto o = std::make_shared<options>();
  auto& cw = o->cw;
  auto* consent = app.add_subcommand("consent", "Change a member's consent in Redis");
  consent->require_subcommand(1);
  auto* withdraw = consent->add_subcommand("withdraw", "Withdraw consent: from a signed unsubscribe token, or for a member, channel and category (idempotent)");
  add_common(withdraw, o->common);
  withdraw->add_option("--token", cw.token, "A List-Unsubscribe token: withdraws its campaign's category for its channel and member");
  withdraw->add_option("--member", cw.member, "Member id (instead of --token)");
  withdraw->add_option("--channel", cw.channel, "email or sms (instead of --token)")->check(CLI::IsMember({"email", "sms"}));
  withdraw->add_option("--category", cw.category, "Category, or * for every category of the channel (instead of --token)");
  withdraw->add_option("--source", cw.source, "Recorded with the withdrawal")->capture_default_str();
  withdraw->callback([&chosen, o] { chosen = [o] { return consent_withdraw_command(resolve_config(o->common), o->cw); }; });
}

}  // namespace budstikke::cli
