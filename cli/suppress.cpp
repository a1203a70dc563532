#include "cli/suppress.hpp"

#include <iostream>

#include <boost/asio/this_coro.hpp>
#include <boost/json/array.hpp>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/message_options.hpp"
#include "queue/consent.hpp"
#include "queue/consumer.hpp"
#include "support/json.hpp"
#include "support/rfc3339.hpp"
#include "support/run_sync.hpp"

namespace budstikke::cli {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// `suppress list`: HSCAN in pages, printed as they come, so a list of any length is never held.
int list_suppressed(const config& cfg, const suppress_options& opt, const std::string& key) {
  std::string error;
  std::size_t listed = 0;
  json::array listed_json;
  support::run_sync([&]() -> asio::awaitable<int> {
    queue::connection conn(co_await asio::this_coro::executor, cfg.redis);
    queue::request req;
    std::vector<queue::reply_ptr> replies;
    std::string cursor = "0";
    do {
      req.clear();
      req.command("HSCAN", key, cursor, "COUNT", 1000);
      if (auto ec = co_await conn.async_exec(req, replies)) {
        error = queue::redis_failure(cfg.redis, ec).message;
        co_return 0;
      }
      const redisReply* r = replies[0].get();
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_ARRAY) {
        error = queue::error_of(r).value_or("unexpected reply to HSCAN");
        co_return 0;
      }
      cursor = std::string(queue::as_string(r->element[0]));
      const redisReply* page = r->element[1];
      for (std::size_t i = 0; i + 1 < page->elements && (opt.limit == 0 || listed < opt.limit); i += 2, ++listed) {
        auto address = queue::as_string(page->element[i]);
        auto entry = queue::parse_suppression(queue::as_string(page->element[i + 1]));
        if (opt.json) {
          json::object o;
          o["address"] = address;
          o["reason"] = entry.reason;
          o["at"] = entry.at;
          listed_json.push_back(std::move(o));
        } else {
          std::cout << fmt::format("{:<40} {:<24} {}\n", address, entry.reason, entry.at);
        }
      }
    } while (cursor != "0" && (opt.limit == 0 || listed < opt.limit));
    co_return 0;
  }());
  if (!error.empty()) {
    std::cerr << "error: " << error << "\n";
    return exit_runtime;
  }
  if (opt.json) {
    json::object o;
    o["channel"] = opt.channel;
    o["entries"] = std::move(listed_json);
    std::cout << support::json_line(o);
  } else if (listed == 0) {
    std::cout << fmt::format("no {} address is suppressed\n", opt.channel);
  }
  return exit_ok;
}

}  // namespace

int suppress_command(const config& cfg, const suppress_options& opt) {
  const auto ch = channel_of("--channel", opt.channel);
  queue::keys keys(cfg.key_prefix);
  const auto key = queue::suppression_key(keys, ch);
  std::vector<std::string> members;
  for (const auto& a : opt.addresses) {
    std::string canonical;
    if (auto problem = canonical_recipient(cfg, ch, a, canonical))
      throw config_error(fmt::format("--address '{}': {}", a, *problem));
    members.push_back(queue::suppression_member(ch, canonical));
  }
  if (opt.action != suppress_action::list && members.empty()) throw config_error("--address is required");
  if (opt.action == suppress_action::add) check_text("--reason", opt.reason, max_source_bytes);
  if (opt.reason.find('|') != std::string::npos) throw config_error("--reason: '|' separates the reason from the time");

  if (opt.action == suppress_action::list) return list_suppressed(cfg, opt, key);

  queue::request req;
  const auto now = support::now_rfc3339();
  for (const auto& m : members) {
    if (opt.action == suppress_action::add) {
      req.command("HSETNX", key, m, queue::format_suppression(opt.reason, now));
      req.command("HGET", key, m);
    } else {
      req.command("HGET", key, m);
      req.command("HDEL", key, m);
    }
  }
  auto answered = exec_once(cfg, req);
  if (!answered) {
    std::cerr << "error: " << answered.error().message << "\n";
    return exit_runtime;
  }
  const auto& replies = *answered;
  json::array results;
  for (std::size_t i = 0; i < members.size(); ++i) {
    const redisReply* first = replies[2 * i].get();
    const redisReply* second = replies[2 * i + 1].get();
    json::object o;
    o["address"] = members[i];
    std::string text;
    if (opt.action == suppress_action::add) {
      const bool added = queue::as_integer(first).value_or(0) == 1;
      auto entry = queue::parse_suppression(queue::as_string(second));
      o["result"] = added ? "added" : "already";
      o["reason"] = entry.reason;
      o["at"] = entry.at;
      text = added ? "suppressed" : fmt::format("was already suppressed: {} {}", entry.reason, entry.at);
    } else {
      const bool removed = queue::as_integer(second).value_or(0) == 1;
      o["result"] = removed ? "removed" : "absent";
      if (removed) {
        auto entry = queue::parse_suppression(queue::as_string(first));
        o["reason"] = entry.reason;
        o["at"] = entry.at;
        text = fmt::format("removed from the suppression list (was: {} {})", entry.reason, entry.at);
      } else {
        text = "was not suppressed";
      }
    }
    if (opt.json) results.push_back(std::move(o));
    else std::cout << fmt::format("{} {}: {}\n", opt.channel, members[i], text);
  }
  if (opt.json) {
    json::object o;
    o["channel"] = opt.channel;
    o["results"] = std::move(results);
    std::cout << support::json_line(o);
  }
  return exit_ok;
}

void add_suppress(CLI::App& app, action& chosen) {
  struct options {
    common_options common;
    suppress_options sp;
  };
  auto o = std::make_shared<options>();
  auto* suppress = app.add_subcommand("suppress", "The suppression lists: addresses never sent to, whatever the consent");
  suppress->require_subcommand(1);
  auto add_one = [&](const char* name, const char* what, suppress_action act) {
    auto* cmd = suppress->add_subcommand(name, what);
    add_common(cmd, o->common);
    cmd->add_option("--channel", o->sp.channel, "email or sms")->required();
    if (act != suppress_action::list)
      cmd->add_option("--address", o->sp.addresses, "E-mail address or phone number (repeatable)")->required();
    if (act == suppress_action::add) cmd->add_option("--reason", o->sp.reason, "Why (e.g. hard-bounce, complaint, request)")->required();
    if (act == suppress_action::list) cmd->add_option("--limit", o->sp.limit, "At most this many (0: all)")->capture_default_str();
    cmd->add_flag("--json", o->sp.json, "As one JSON object");
    cmd->callback([&chosen, o, act] {
      chosen = [o, act] {
        o->sp.action = act;
        return suppress_command(resolve_config(o->common), o->sp);
      };
    });
  };
  add_one("add", "Suppress addresses (an address suppressed before keeps its reason and time)", suppress_action::add);
  add_one("remove", "Take addresses off the suppression list", suppress_action::remove);
  add_one("list", "Every suppressed address of a channel, with reason and time", suppress_action::list);
}

}  // namespace budstikke::cli
