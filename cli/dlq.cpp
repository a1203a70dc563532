#include "cli/dlq.hpp"

#include <iostream>

#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "queue/campaign_store.hpp"
#include "queue/consumer.hpp"
#include "queue/dead_letters.hpp"
#include "support/json.hpp"
#include "support/run_sync.hpp"

namespace budstikke::cli {
namespace asio = boost::asio;
using support::run_sync;

namespace {

constexpr std::size_t page = 500;

// A dead letter with the campaign it belongs to.
struct dead_letter : queue::dead_letter {
  std::string campaign;
};

// Fields a listing shows; `show` prints every field, the address and data included.
constexpr std::string_view listed_fields[] = {"entry", "origin", "member", "channel", "attempts", "reason", "reply", "at"};

boost::json::object to_json(const dead_letter& d, bool all_fields) {
  boost::json::object o;
  o["campaign"] = d.campaign;
  o["id"] = d.id;
  for (const auto& [f, v] : d.fields) {
    if (!all_fields && std::find(std::begin(listed_fields), std::end(listed_fields), f) == std::end(listed_fields))
      continue;
    o[f] = v;
  }
  return o;
}

// One page of a campaign's dead letters after `cursor` ("-" first), filtered by reason, into `out`;
// true when there may be more pages.
asio::awaitable<support::result<bool>> read_page(queue::connection& conn, const queue::keys& keys,
                                                 const std::string& campaign, std::string& cursor,
                                                 const std::string& reason, std::vector<dead_letter>& out) {
  queue::request req;
  queue::append_dead_letters(req, keys, campaign, cursor, page);
  std::vector<queue::reply_ptr> replies;
  if (auto ec = co_await conn.async_exec(req, replies)) co_return queue::redis_failure(conn.config(), ec);
  auto letters = queue::parse_dead_letters(replies[0].get());
  if (!letters)
    co_return support::fail(fmt::format("reading the dead letters of {}: Redis answered '{}'", campaign,
                                        queue::error_of(replies[0].get()).value_or("an unexpected reply")),
                            std::make_error_code(std::errc::io_error));
  const bool more = letters->size() == page;
  if (!letters->empty()) cursor = "(" + letters->back().id;
  out.clear();
  for (auto& l : *letters) {
    if (!reason.empty() && l.get("reason").find(reason) == std::string_view::npos) continue;
    out.push_back({std::move(l), campaign});
  }
  co_return more;
}

int list(const config& cfg, const dlq_options& opt) {
  queue::keys keys(cfg.key_prefix);
  std::string error;
  std::size_t shown = 0;
  bool header = false;
  auto print = [&](const dead_letter& d) {
    if (opt.json) {
      std::cout << support::json_line(to_json(d, false));
      return;
    }
    if (!header) {
      std::cout << fmt::format("{:<24} {:<16} {:<12} {:<6} {:>8} {:<24} {}\n", "CAMPAIGN", "ID", "MEMBER", "CHAN",
                               "ATTEMPTS", "AT", "REASON");
      header = true;
    }
    std::cout << fmt::format("{:<24} {:<16} {:<12} {:<6} {:>8} {:<24} {}\n", d.campaign, d.id, d.get("member"),
                             d.get("channel"), d.get("attempts"), d.get("at"), d.get("reason"));
  };
  auto ec = run_sync([&]() -> asio::awaitable<std::error_code> {
    queue::connection conn(co_await asio::this_coro::executor, cfg.redis);
    std::vector<std::string> ids;
    if (auto ec = co_await queue::async_list_campaigns(conn, keys, false, ids, opt.campaign)) {
      error = queue::redis_failure(cfg.redis, ec).message;
      co_return ec;
    }
    std::vector<dead_letter> letters;
    for (const auto& id : ids) {
      std::string cursor = "-";
      bool more = true;
      while (more) {
        auto read = co_await read_page(conn, keys, id, cursor, opt.reason, letters);
        if (!read) {
          error = read.error().message;
          co_return read.error().code;
        }
        more = *read;
        for (const auto& d : letters) {
          if (opt.limit && shown >= opt.limit) co_return std::error_code{};
          print(d);
          ++shown;
        }
      }
    }
    co_return std::error_code{};
  }());
  if (ec) {
    std::cerr << "error: " << error << "\n";
    return exit_runtime;
  }
  if (!opt.json && shown == 0) std::cout << "no dead letters\n";
  return exit_ok;
}

int show(const config& cfg, const dlq_options& opt) {
  queue::keys keys(cfg.key_prefix);
  std::string error;
  std::optional<dead_letter> found;
  auto ec = run_sync([&]() -> asio::awaitable<std::error_code> {
    queue::connection conn(co_await asio::this_coro::executor, cfg.redis);
    const std::string& entry = opt.entries.front();
    queue::request req;
    queue::append_dead_letter(req, keys, *opt.campaign, entry);
    std::vector<queue::reply_ptr> replies;
    if (auto ec = co_await conn.async_exec(req, replies)) {
      error = queue::redis_failure(cfg.redis, ec).message;
      co_return ec;
    }
    auto letters = queue::parse_dead_letters(replies[0].get());
    if (!letters) {
      error = fmt::format("'{}' is not a dead-letter id: Redis answered '{}'", entry,
                          queue::error_of(replies[0].get()).value_or("an unexpected reply"));
      co_return std::make_error_code(std::errc::invalid_argument);
    }
    if (!letters->empty()) found = dead_letter{std::move(letters->front()), *opt.campaign};
    co_return std::error_code{};
  }());
  if (ec) {
    std::cerr << "error: " << error << "\n";
    return ec == std::errc::invalid_argument ? exit_usage : exit_runtime;
  }
  if (!found) {
    std::cerr << fmt::format("error: campaign {} has no dead letter {}\n", *opt.campaign, opt.entries.front());
    return exit_usage;
  }
  if (opt.json) {
    std::cout << support::json_line(to_json(*found, true));
    return exit_ok;
  }
  std::cout << fmt::format("campaign: {}\nid: {}\n", found->campaign, found->id);
  for (const auto& [f, v] : found->fields) std::cout << f << ": " << v << "\n";
  return exit_ok;
}

int requeue(const config& cfg, const dlq_options& opt) {
  queue::keys keys(cfg.key_prefix);
  const std::string& id = *opt.campaign;
  std::string error, state;
  bool usage = false;
  std::int64_t requeued = 0;
  auto ec = run_sync([&]() -> asio::awaitable<std::error_code> {
    queue::connection conn(co_await asio::this_coro::executor, cfg.redis);
    queue::request req;
    std::vector<queue::reply_ptr> replies;
    queue::append_campaign_summary(req, keys, id);
    if (auto ec = co_await conn.async_exec(req, replies)) {
      error = queue::redis_failure(cfg.redis, ec).message;
      co_return ec;
    }
    const auto summary = queue::parse_campaign_summary(replies[0].get());
    if (!summary.exists) {
      error = fmt::format("campaign '{}' does not exist", id);
      usage = true;
      co_return std::make_error_code(std::errc::invalid_argument);
    }
    state = summary.state;
    const auto priority = summary.priority;
    if (state == "cancelled") {
      error = fmt::format("campaign {} is cancelled; its dead letters cannot be requeued", id);
      usage = true;
      co_return std::make_error_code(std::errc::invalid_argument);
    }

    // One script per batch: a dead letter is moved (XADD + XDEL + the counts) atomically, and one
    // already requeued (by a concurrent call) is skipped.
    auto requeue_batch = [&](const std::vector<std::string>& batch) -> asio::awaitable<std::error_code> {
      queue::request r;
      queue::append_requeue_dead(r, keys, id, batch);
      std::vector<queue::reply_ptr> out;
      if (auto ec = co_await conn.async_exec(r, out)) {
        error = queue::redis_failure(cfg.redis, ec).message;
        co_return ec;
      }
      auto result = queue::parse_requeued(out[0].get());
      if (!result) {
        error = fmt::format("requeueing dead letters of {}: Redis answered '{}'", id,
                            queue::error_of(out[0].get()).value_or("an unexpected reply"));
        co_return std::make_error_code(std::errc::io_error);
      }
      requeued += result->count;
      state = result->state;
      co_return std::error_code{};
    };

    std::vector<std::string> batch;
    if (!opt.entries.empty()) {
      for (std::size_t i = 0; i < opt.entries.size(); i += page) {
        batch.assign(opt.entries.begin() + static_cast<std::ptrdiff_t>(i),
                     opt.entries.begin() + static_cast<std::ptrdiff_t>(std::min(opt.entries.size(), i + page)));
        if (auto ec = co_await requeue_batch(batch)) co_return ec;
      }
    } else {
      std::string cursor = "-";
      std::vector<dead_letter> letters;
      bool more = true;
      while (more) {
        auto read = co_await read_page(conn, keys, id, cursor, opt.reason, letters);
        if (!read) {
          error = read.error().message;
          co_return read.error().code;
        }
        more = *read;
        if (letters.empty()) continue;
        batch.clear();
        for (const auto& d : letters) batch.push_back(d.id);
        if (auto ec = co_await requeue_batch(batch)) co_return ec;
      }
    }
    // A finished campaign left the registry; it must be back there for an engine to serve it. The
    // registry is a global key, so this is a separate command (cluster: another slot); repeating
    // the requeue repeats it.
    if (state == "active" || state == "paused") {
      req.clear();
      req.command("ZADD", keys.registry(), priority, id);
      if (auto ec = co_await conn.async_exec(req, replies)) {
        error = queue::redis_failure(cfg.redis, ec).message;
        co_return ec;
      }
    }
    co_return std::error_code{};
  }());
  if (ec) {
    std::cerr << "error: " << error << "\n";
    return usage ? exit_usage : exit_runtime;
  }
  std::cout << fmt::format("requeued {} dead letter{} of campaign {} (campaign {})\n", requeued,
                           requeued == 1 ? "" : "s", id, state);
  return exit_ok;
}

}  // namespace

int dlq_command(const config& cfg, const dlq_options& opt) {
  if (opt.action != dlq_action::list && !opt.campaign) {
    std::cerr << "error: --campaign is required\n";
    return exit_usage;
  }
  if (opt.campaign && !queue::valid_campaign_id(*opt.campaign)) {
    std::cerr << fmt::format("error: campaign id '{}' is not valid\n", *opt.campaign);
    return exit_usage;
  }
  switch (opt.action) {
    case dlq_action::list: return list(cfg, opt);
    case dlq_action::show:
      if (opt.entries.size() != 1) {
        std::cerr << "error: dlq show takes one dead-letter id\n";
        return exit_usage;
      }
      return show(cfg, opt);
    case dlq_action::requeue: return requeue(cfg, opt);
  }
  return exit_usage;
}

void add_dlq(CLI::App& app, action& chosen) {
  struct options {
    common_options common;
    dlq_options dlq;
    std::string campaign, entry;
  };
  auto o = std::make_shared<options>();
  auto* dlq = app.add_subcommand("dlq", "Dead letters (recipients recorded failed): list, show, requeue");
  dlq->require_subcommand(1);
  auto* list = dlq->add_subcommand("list", "List dead letters (member ids and reasons, no addresses)");
  add_common(list, o->common);
  list->add_option("--campaign", o->campaign, "One campaign (default: every campaign)");
  list->add_option("--reason", o->dlq.reason, "Only those whose reason contains this text");
  list->add_option("--limit", o->dlq.limit, "At most this many; 0 = all")->check(CLI::Range(0, 100000000))->capture_default_str();
  list->add_flag("--json", o->dlq.json, "One JSON object per dead letter and line");
  auto* show = dlq->add_subcommand("show", "Show one dead letter with every field (address and data included)");
  add_common(show, o->common);
  show->add_option("ID", o->entry, "The dead letter's id (from dlq list)")->required();
  show->add_option("--campaign", o->campaign, "Campaign id")->required();
  show->add_flag("--json", o->dlq.json, "As one JSON object");
  auto* requeue = dlq->add_subcommand("requeue", "Put dead letters back into their campaign, to be sent again (attempts start over)");
  add_common(requeue, o->common);
  requeue->add_option("--campaign", o->campaign, "Campaign id")->required();
  requeue->add_option("--reason", o->dlq.reason, "Only those whose reason contains this text");
  requeue->add_option("--entry", o->dlq.entries, "Only this dead letter (repeatable)");
  auto choose = [&chosen, o](dlq_action act) {
    chosen = [o, act] {
      if (!o->campaign.empty()) o->dlq.campaign = o->campaign;
      o->dlq.action = act;
      if (act == dlq_action::show) o->dlq.entries.assign(1, o->entry);
      if (act == dlq_action::requeue && !o->dlq.entries.empty() && !o->dlq.reason.empty())
        throw config_error("--entry and --reason do not go together");
      return dlq_command(resolve_config(o->common), o->dlq);
    };
  };
  list->callback([choose] { choose(dlq_action::list); });
  show->callback([choose] { choose(dlq_action::show); });
  requeue->callback([choose] { choose(dlq_action::requeue); });
}

}  // namespace budstikke::cli
