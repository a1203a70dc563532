#include "cli/consent.hpp"

#include <algorithm>
#include <iostream>
#include <map>
#include <set>

#include <boost/asio/this_coro.hpp>
#include <boost/json/array.hpp>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/message_options.hpp"
#include "engine/unsubscribe.hpp"
#include "queue/consent.hpp"
#include "queue/consumer.hpp"
#include "support/json.hpp"
#include "support/rfc3339.hpp"
#include "support/run_sync.hpp"

namespace budstikke::cli {
namespace asio = boost::asio;
namespace json = boost::json;
using namespace engine;

namespace {

json::object record_json(std::string_view field, std::string_view value) {
  json::object o;
  const auto colon = field.find(':');
  o["channel"] = field.substr(0, colon);
  o["category"] = colon == std::string_view::npos ? std::string_view() : field.substr(colon + 1);
  if (auto r = queue::parse_consent(value)) {
    o["state"] = r->granted ? "granted" : "withdrawn";
    o["at"] = r->at;
    o["source"] = r->source;
  } else {
    o["state"] = "malformed";
    o["value"] = value;
  }
  return o;
}

std::string record_text(std::string_view value) {
  auto r = queue::parse_consent(value);
  if (!r) return fmt::format("malformed record '{}'", value);
  return fmt::format("{} {} ({})", r->granted ? "granted" : "withdrawn", r->at, r->source);
}

}  // namespace

int consent_withdraw_command(const config& cfg, const consent_withdraw_options& opt) {
  const bool by_token = !opt.token.empty();
  if (by_token == !(opt.member.empty() && opt.channel.empty() && opt.category.empty())) {
    std::cerr << "error: give either --token, or --member, --channel and --category\n";
    return exit_usage;
  }
  if (!by_token) {
    check_text("--member", opt.member, queue::max_member_id_bytes);
    channel_of("--channel", opt.channel);
    check_text("--category", opt.category, max_category_bytes);
    check_text("--source", opt.source, max_source_bytes);
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
      if (opt.json) {
        json::object o;
        o["member"] = result.what.member;
        o["channel"] = result.what.channel;
        o["category"] = result.what.category;
        o["result"] = to_string(result.status);
        std::cout << support::json_line(o);
      } else {
        std::cout << fmt::format("member {}: {} consent for {} {}\n", result.what.member, result.what.channel,
                                 result.what.category == "*" ? "every category" : result.what.category,
                                 result.status == withdrawal_status::withdrawn ? "withdrawn" : "was already withdrawn");
      }
      return exit_ok;
    case withdrawal_status::redis_error:
      std::cerr << "error: " << result.detail << "\n";
      return exit_runtime;
    default:
      std::cerr << fmt::format("error: {}: {}\n", to_string(result.status), result.detail);
      return exit_usage;
  }
}

int consent_grant_command(const config& cfg, const consent_grant_options& opt) {
  check_text("--member", opt.member, queue::max_member_id_bytes);
  const auto ch = channel_of("--channel", opt.channel);
  check_text("--category", opt.category, max_category_bytes);
  check_text("--source", opt.source, max_source_bytes);
  const auto field = opt.category == "*" ? queue::channel_wide_consent_field(ch) : queue::consent_field(ch, opt.category);
  const auto value = queue::format_consent(true, support::now_rfc3339(), opt.source);
  queue::request req;
  queue::append_grant_consent(req, queue::keys(cfg.key_prefix), opt.member, field, value);
  auto replies = exec_once(cfg, req);
  if (!replies) {
    std::cerr << "error: " << replies.error().message << "\n";
    return exit_runtime;
  }
  const redisReply* exec = replies->back().get();  // EXEC: {the record replaced, HSET's count}
  std::optional<std::string> replaced;
  if (exec->type == REDIS_REPLY_ARRAY && exec->elements == 2 && !queue::is_nil(exec->element[0]))
    replaced = std::string(queue::as_string(exec->element[0]));
  if (opt.json) {
    json::object o = record_json(field, value);
    o["member"] = opt.member;
    o["replaced"] = replaced ? json::value(record_json(field, *replaced)) : json::value(nullptr);
    std::cout << support::json_line(o);
  } else {
    std::cout << fmt::format("member {}: {} consent for {} granted ({}){}\n", opt.member, opt.channel,
                             opt.category == "*" ? "every category" : opt.category, opt.source,
                             replaced ? fmt::format("; replaced: {}", record_text(*replaced)) : "");
  }
  return exit_ok;
}

int consent_show_command(const config& cfg, const consent_show_options& opt) {
  check_text("--member", opt.member, queue::max_member_id_bytes);
  // The addresses as the engine looks them up.
  struct address {
    queue::channel ch;
    std::string given, canonical;
  };
  std::vector<address> addresses;
  for (auto [ch, list] : {std::pair{queue::channel::email, &opt.emails}, std::pair{queue::channel::sms, &opt.phones}})
    for (const auto& a : *list) {
      address entry{ch, a, {}};
      if (auto problem = canonical_recipient(cfg, ch, a, entry.canonical))
        throw config_error(fmt::format("{} '{}': {}", ch == queue::channel::email ? "--email" : "--phone", a, *problem));
      addresses.push_back(std::move(entry));
    }
  queue::keys keys(cfg.key_prefix);
  queue::request req;
  req.command("HGETALL", queue::consent_key(keys, opt.member));
  for (const auto& a : addresses)
    req.command("HGET", queue::suppression_key(keys, a.ch), queue::suppression_member(a.ch, a.canonical));
  auto answered = exec_once(cfg, req);
  if (!answered) {
    std::cerr << "error: " << answered.error().message << "\n";
    return exit_runtime;
  }
  const auto& replies = *answered;
  // The records, by field.
  std::map<std::string_view, const redisReply*> records;
  const redisReply* all = replies[0].get();
  for (std::size_t i = 0; i + 1 < all->elements; i += 2)
    records.emplace(queue::as_string(all->element[i]), all->element[i + 1]);
  // What a message of each category would get now: the configured categories and those recorded.
  std::set<std::string, std::less<>> categories;
  for (const auto& [name, policy] : cfg.categories) categories.insert(name);
  for (const auto& [field, value] : records) {
    auto category = field.substr(field.find(':') + 1);
    if (category != "*" && field.find(':') != std::string_view::npos) categories.insert(std::string(category));
  }
  auto decision = [&](queue::channel ch, const std::string& category) {
    auto find = [&](const std::string& field) -> const redisReply* {
      auto it = records.find(field);
      return it == records.end() ? nullptr : it->second;
    };
    const redisReply* suppressed = nullptr;
    for (std::size_t i = 0; i < addresses.size(); ++i)
      if (addresses[i].ch == ch && !queue::is_nil(replies[1 + i].get())) suppressed = replies[1 + i].get();
    const auto& policy = cfg.policy(category);
    const redisReply* specific = policy.check_consent ? find(queue::consent_field(ch, category)) : nullptr;
    const redisReply* wide = policy.check_consent ? find(queue::channel_wide_consent_field(ch)) : nullptr;
    return queue::consent_problem(specific, wide, suppressed, policy.consent_required, true);
  };

  if (opt.json) {
    json::object o;
    o["member"] = opt.member;
    json::array recs;
    for (const auto& [field, value] : records) recs.push_back(record_json(field, queue::as_string(value)));
    o["consent"] = std::move(recs);
    json::array sup;
    for (std::size_t i = 0; i < addresses.size(); ++i) {
      json::object s;
      s["channel"] = queue::to_string(addresses[i].ch);
      s["address"] = addresses[i].canonical;
      const redisReply* r = replies[1 + i].get();
      s["suppressed"] = !queue::is_nil(r);
      if (!queue::is_nil(r)) {
        auto entry = queue::parse_suppression(queue::as_string(r));
        s["reason"] = entry.reason;
        s["at"] = entry.at;
      }
      sup.push_back(std::move(s));
    }
    o["suppression"] = std::move(sup);
    json::array sends;
    for (auto ch : {queue::channel::email, queue::channel::sms})
      for (const auto& category : categories) {
        json::object s;
        s["channel"] = queue::to_string(ch);
        s["category"] = category;
        auto problem = decision(ch, category);
        s["sends"] = !problem;
        s["reason"] = problem ? json::value(*problem) : json::value(nullptr);
        sends.push_back(std::move(s));
      }
    o["would_send"] = std::move(sends);
    std::cout << support::json_line(o);
    return exit_ok;
  }
  std::cout << fmt::format("member {}\n\nconsent records:\n", opt.member);
  if (records.empty()) std::cout << "  none\n";
  for (const auto& [field, value] : records)
    std::cout << fmt::format("  {:<24} {}\n", field, record_text(queue::as_string(value)));
  if (!addresses.empty()) std::cout << "\nsuppression:\n";
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    const redisReply* r = replies[1 + i].get();
    std::string state = "not suppressed";
    if (!queue::is_nil(r)) {
      auto entry = queue::parse_suppression(queue::as_string(r));
      state = fmt::format("suppressed: {} {}", entry.reason, entry.at);
    }
    std::cout << fmt::format("  {:<5} {:<32} {}\n", queue::to_string(addresses[i].ch), addresses[i].canonical, state);
  }
  std::cout << "\na message now would be:\n";
  for (auto ch : {queue::channel::email, queue::channel::sms})
    for (const auto& category : categories) {
      auto problem = decision(ch, category);
      std::cout << fmt::format("  {:<5} {:<16} {}\n", queue::to_string(ch), category,
                               problem ? fmt::format("not sent: {}", *problem) : std::string("sent"));
    }
  if (opt.emails.empty() && opt.phones.empty())
    std::cout << "(suppression not looked up: give the member's addresses with --email and --phone)\n";
  return exit_ok;
}

void add_consent(CLI::App& app, action& chosen) {
  struct options {
    common_options common;
    consent_withdraw_options cw;
    consent_grant_options cg;
    consent_show_options cs;
  };
  auto o = std::make_shared<options>();
  auto* consent = app.add_subcommand("consent", "See and change a member's consent in Redis");
  consent->require_subcommand(1);

  auto* show = consent->add_subcommand("show", "Every consent record of a member, the suppression entries of the "
                                               "addresses given, and what a message of each category would get now");
  add_common(show, o->common);
  show->add_option("--member", o->cs.member, "Member id")->required();
  show->add_option("--email", o->cs.emails, "The member's e-mail address, looked up in the suppression list (repeatable)");
  show->add_option("--phone", o->cs.phones, "The member's phone number, looked up in the suppression list (repeatable)");
  show->add_flag("--json", o->cs.json, "As one JSON object");
  show->callback([&chosen, o] { chosen = [o] { return consent_show_command(resolve_config(o->common), o->cs); }; });

  auto* grant = consent->add_subcommand("grant", "Record a member's consent for a channel and category (replaces an earlier record, a withdrawal too)");
  add_common(grant, o->common);
  grant->add_option("--member", o->cg.member, "Member id")->required();
  grant->add_option("--channel", o->cg.channel, "email or sms")->required();
  grant->add_option("--category", o->cg.category, "Category, or * for every category of the channel")->required();
  grant->add_option("--source", o->cg.source, "Recorded with the grant: who or what gave it (e.g. 'phone call 2026-12-02')")->required();
  grant->add_flag("--json", o->cg.json, "As one JSON object");
  grant->callback([&chosen, o] { chosen = [o] { return consent_grant_command(resolve_config(o->common), o->cg); }; });

  auto& cw = o->cw;
  auto* withdraw = consent->add_subcommand("withdraw", "Withdraw consent: from a signed unsubscribe token, or for a member, channel and category (idempotent)");
  add_common(withdraw, o->common);
  withdraw->add_option("--token", cw.token, "A List-Unsubscribe token: withdraws its campaign's category for its channel and member");
  withdraw->add_option("--member", cw.member, "Member id (instead of --token)");
  withdraw->add_option("--channel", cw.channel, "email or sms (instead of --token)")->check(CLI::IsMember({"email", "sms"}));
  withdraw->add_option("--category", cw.category, "Category, or * for every category of the channel (instead of --token)");
  withdraw->add_option("--source", cw.source, "Recorded with the withdrawal")->capture_default_str();
  withdraw->add_flag("--json", cw.json, "As one JSON object");
  withdraw->callback([&chosen, o] { chosen = [o] { return consent_withdraw_command(resolve_config(o->common), o->cw); }; });
}

}  // namespace budstikke::cli
