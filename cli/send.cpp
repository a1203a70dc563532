#include "cli/send.hpp"

#include <iostream>
#include <random>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "adapters/sms_http/messenger.hpp"
#include "adapters/sms_http/phone.hpp"
#include "adapters/sms_http/protocol.hpp"
#include "adapters/smtp/messenger.hpp"
#include "cli/command.hpp"
#include "cli/message_options.hpp"
#include "cli/template_set.hpp"
#include "engine/event.hpp"
#include "engine/limits.hpp"
#include "engine/quiet_hours.hpp"
#include "engine/renderer.hpp"
#include "queue/campaign_store.hpp"
#include "queue/consent.hpp"
#include "queue/consumer.hpp"
#include "queue/rate_limit.hpp"
#include "support/rfc3339.hpp"

namespace budstikke::cli {
using engine::campaign_renderer;
using engine::event;
namespace asio = boost::asio;
namespace {

// The consumer name under which `send` claims the entry of its one-recipient campaign.
constexpr std::string_view send_consumer = "budstikke-send";
// The longest `send` waits for the rate limits to let its message through.
constexpr auto max_token_wait = std::chrono::seconds(60);

struct one_delivery final : adapters::delivery_listener {
  explicit one_delivery(asio::any_io_executor ex) : done(ex) {}
  void on_delivered(adapters::delivery&) override {
    reported = true;
    done.notify();
  }
  event done;
  bool reported = false;
};

// `send-20261202T173000Z-3fa9c1`: when, and random enough that two sends in a second differ.
std::string trace_campaign_id() {
  std::random_device rd;
  return fmt::format("send-{:%Y%m%dT%H%M%SZ}-{:06x}",
                     std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()), rd() & 0xffffff);
}

// Renders the recipient's message into `d` (envelope, data) under the entry id; the reason when
// it cannot be made.
std::optional<std::string> render_into(campaign_renderer& renderer, const queue::campaign_definition& def,
                                       std::string_view entry_id, const send_options& opt, adapters::delivery& d,
                                       templates::sms::message& text) {
  const auto ch = def.kind;
  if (ch == queue::channel::email) {
    if (auto failure = renderer.prepare_email(entry_id, opt.to, opt.member, opt.data, d)) return failure->reason;
    return std::nullopt;
  }
  // The sender id: --from, else sms.gateway.from.
  if (auto failure = renderer.prepare_sms(d.envelope_to, opt.member, opt.data, def.from_address, text, d))
    return failure->reason;
  return std::nullopt;
}

// The campaign definition from the options; prints the problem and returns false on a usage error.
bool definition_from(const send_options& opt, queue::channel ch, queue::campaign_definition& def) {
  def.kind = ch;
  def.category = opt.category;
  def.tenant = opt.tenant;
  def.created_at = support::now_rfc3339();
  const bool inline_text = !opt.subject.empty() || !opt.text.empty() || !opt.html.empty();
  if (opt.template_dir.empty() == !inline_text) {
    std::cerr << (ch == queue::channel::email ? "error: send: give either --template, or --subject with --text and/or --html\n"
                                              : "error: send: give either --template or --text\n");
    return false;
  }
  if (ch == queue::channel::email) {
    if (!sender_into(opt.from, opt.from_name, def)) return false;
  } else {
    if (!opt.subject.empty() || !opt.html.empty() || !opt.from_name.empty()) {
      std::cerr << "error: send: --subject, --html and --from-name are for e-mail (--channel email)\n";
      return false;
    }
    def.from_address = opt.from;
  }
  if (!opt.template_dir.empty()) return true;  // loaded by the caller (it prints its own errors)
  if (ch == queue::channel::sms) {
    def.templates["sms"] = opt.text;
    return true;
  }
  if (opt.subject.empty() || (opt.text.empty() && opt.html.empty())) {
    std::cerr << "error: send: an e-mail needs --subject and --text and/or --html\n";
    return false;
  }
  def.templates["subject"] = opt.subject;
  if (!opt.text.empty()) def.templates["text"] = opt.text;
  if (!opt.html.empty()) def.templates["html"] = opt.html;
  return true;
}

// Consent and suppression as the engine reads them when it sends: the reason not to send, or
// nullopt. Sets `unreachable` when Redis could not be asked.
asio::awaitable<std::optional<std::string>> check_consent(queue::connection& conn, const config& cfg,
                                                          const queue::keys& keys, queue::channel ch,
                                                          const send_options& opt, std::string_view address,
                                                          bool& unreachable) {
  queue::request req;
  const auto& policy = cfg.policy(opt.category);
  queue::append_consent_lookup(req, keys, ch, opt.category, opt.member, address, policy.check_consent);
  std::vector<queue::reply_ptr> replies;
  if (auto ec = co_await conn.async_exec(req, replies)) {
    unreachable = true;
    co_return fmt::format("cannot read consent from Redis: {}", ec.message());
  }
  const redisReply* consent = policy.check_consent ? replies[0].get() : nullptr;
  co_return queue::lookup_problem(consent, replies.back().get(), policy.consent_required, !opt.member.empty());
}

// One token from every bucket the message must pass (global, the channel's, the tenant's, the
// recipient domain's), waiting as the buckets say, at most max_token_wait. The problem, or nullopt.
asio::awaitable<std::optional<std::string>> take_token(queue::connection& conn, const config& cfg,
                                                       const queue::keys& keys, const queue::campaign_definition& def,
                                                       std::string_view address) {
  engine::limit_plan plan(cfg.limits, keys);
  if (!plan.enabled()) co_return std::nullopt;
  std::vector<const queue::token_bucket*> buckets;
  for (int b : plan.buckets_for(def.kind, plan.tenant(def.tenant), address))
    if (b >= 0) buckets.push_back(&plan.at(b).spec);
  if (buckets.empty()) co_return std::nullopt;
  const auto give_up = std::chrono::steady_clock::now() + max_token_wait;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  queue::request req;
  std::vector<queue::reply_ptr> replies;
  for (bool told = false;;) {
    req.clear();
    queue::append_take_tokens(req, buckets, 1);
    if (auto ec = co_await conn.async_exec(req, replies))
      co_return fmt::format("cannot take a rate-limit token from Redis: {}", ec.message());
    auto grant = queue::parse_token_grant(replies[0].get());
    if (!grant) co_return fmt::format("rate-limit script refused: {}", queue::error_of(replies[0].get()).value_or(""));
    if (grant->granted > 0) co_return std::nullopt;
    const auto wait = std::max<std::chrono::microseconds>(grant->wait, std::chrono::milliseconds(1));
    const auto& limiting = buckets[static_cast<std::size_t>(std::max(0, grant->limiting)) % buckets.size()]->key;
    if (std::chrono::steady_clock::now() + wait > give_up)
      co_return fmt::format("the rate limit {} gives no token within {} s", limiting, max_token_wait.count());
    if (!told) std::cout << fmt::format("waiting for a token of the rate limit {}\n", limiting);
    told = true;
    timer.expires_after(wait);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

// Records the campaign of one recipient and claims its entry for `send`, with the in-flight mark
// set (a crash while the message is on the wire leaves it visible as such). The entry id, or the
// failure.
asio::awaitable<support::result<std::string>> record_campaign(queue::connection& conn, const queue::keys& keys,
                                                              const queue::campaign_definition& def,
                                                              std::string_view to, const send_options& opt) {
  queue::campaign_writer writer(conn, keys, def);
  if (auto created = co_await writer.async_create(); !created) co_return created.error();
  writer.add(to, opt.member, opt.data);
  if (auto sealed = co_await writer.async_seal(false); !sealed) co_return sealed.error();
  queue::request req;
  queue::append_read(req, send_consumer, 1, keys.recipients(def.id));
  std::vector<queue::reply_ptr> replies;
  if (auto ec = co_await conn.async_exec(req, replies)) co_return queue::redis_failure(conn.config(), ec);
  std::string entry_id;
  queue::for_each_entry(replies[0].get(), [&](std::string_view, const queue::stream_entry& e) { entry_id = e.id; });
  if (entry_id.empty())
    co_return support::fail(fmt::format("cannot claim the entry of campaign {}: {}", def.id,
                                        queue::error_of(replies[0].get()).value_or("no entry")));
  req.clear();
  req.command("HSET", keys.inflight(def.id), entry_id,
              std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  if (auto ec = co_await conn.async_exec(req, replies)) co_return queue::redis_failure(conn.config(), ec);
  co_return entry_id;
}

// The outcome in the campaign's counts, outcomes and dead letters, and one event.
asio::awaitable<std::optional<std::string>> record_outcome(queue::connection& conn, const config& cfg,
                                                           const queue::keys& keys, const queue::campaign_definition& def,
                                                           std::string_view entry_id, const send_options& opt,
                                                           queue::final_state state, std::string_view reason,
                                                           std::string_view reply) {
  const auto now = support::now_rfc3339();
  queue::outcome_record rec;
  rec.entry_id = entry_id;
  rec.state = state;
  rec.member = opt.member;
  rec.reason = reason;
  rec.attempts = state == queue::final_state::skipped ? 0 : 1;
  rec.reply = reply;
  std::vector<queue::outcome_record> records{rec};
  queue::request req;
  queue::append_record_outcomes(req, keys, def.id, now, records);
  if (cfg.engine.events_max_len > 0) {
    queue::begin_append_events(req, keys, cfg.engine.events_max_len, now, 1);
    queue::append_event(req, def.id, entry_id, opt.member, def.kind, queue::to_string(state), reason, reply,
                        rec.attempts);
  }
  std::vector<queue::reply_ptr> replies;
  if (auto ec = co_await conn.async_exec(req, replies))
    co_return fmt::format("cannot record the outcome in Redis: {}", ec.message());
  for (const auto& r : replies)
    if (auto err = queue::error_of(r.get())) co_return fmt::format("cannot record the outcome: {}", *err);
  co_return std::nullopt;
}

template <typename Messenger>
asio::awaitable<void> deliver(Messenger& messenger, one_delivery& listener, adapters::delivery& d) {
  messenger.push(d);
  while (!listener.reported) co_await listener.done.wait_for(std::chrono::seconds(1));
  messenger.close();
  co_await messenger.async_wait_closed();
}

// How the answer is recorded: accepted is sent; a refusal failed; no answer after the final dot
// ambiguous. A manual send is not retried: a deferral or an unreachable path is recorded failed
// (a dead letter that `dlq requeue` hands to the engine).
std::pair<queue::final_state, std::string> verdict(const adapters::delivery& d) {
  switch (d.result) {
    case adapters::outcome::accepted:
      return {queue::final_state::sent, {}};
    case adapters::outcome::permanent:
      return {queue::final_state::failed, d.reply};
    case adapters::outcome::ambiguous:
      return {queue::final_state::ambiguous, d.reply};
    case adapters::outcome::transient:
    case adapters::outcome::unsent:
      break;
  }
  return {queue::final_state::failed, fmt::format("not sent, not retried (manual send): {}", d.reply)};
}

}  // namespace

int send_command(const config& cfg, const send_options& opt) {
  const auto ch = queue::parse_channel(opt.channel);
  if (!ch) {
    std::cerr << fmt::format("error: --channel '{}': expected email or sms\n", opt.channel);
    return exit_usage;
  }
  if (*ch == queue::channel::sms && !cfg.sms.gateway) {
    std::cerr << "error: send: no SMS gateway is configured (sms.gateway)\n";
    return exit_usage;
  }
  queue::campaign_definition def;
  def.id = trace_campaign_id();
  if (!definition_from(opt, *ch, def)) return exit_usage;
  if (!opt.template_dir.empty() && (!load_templates_into(opt.template_dir, opt.templates_root, def) ||
                                    !template_set_fits(opt.template_dir, def)))
    return exit_usage;
  if (*ch == queue::channel::sms && def.from_address.empty()) def.from_address = cfg.sms.gateway->default_from;
  if (*ch == queue::channel::sms && adapters::sms_http::credentials_in_clear(*cfg.sms.gateway))
    std::cerr << "warning: the SMS gateway's credentials go over plain http:// to a host that is not loopback; "
                 "use https://\n";

  adapters::delivery d;
  if (auto why = queue::recipient_size_problem(opt.to, opt.member, opt.data)) {
    std::cerr << "error: " << *why << "\n";
    return exit_usage;
  }
  if (auto problem = canonical_recipient(cfg, *ch, opt.to, d.envelope_to)) {
    std::cerr << "error: --to: " << *problem << "\n";
    return exit_usage;
  }
  const std::string address = d.envelope_to;  // E.164, or the e-mail address with an ASCII domain
  auto compiled = campaign_renderer::compile(def, cfg);
  if (!compiled) {
    std::cerr << "error: " << compiled.error().message << "\n";
    return exit_usage;
  }
  auto& renderer = *compiled;
  // The final rendering carries the entry id (in the Message-ID); this one checks the data first.
  templates::sms::message text;
  if (auto problem = render_into(*renderer, def, "0-1", opt, d, text)) {
    std::cerr << "error: " << *problem << "\n";
    return exit_usage;
  }
  std::cout << fmt::format("to:        {}\n", address);
  if (*ch == queue::channel::sms)
    std::cout << fmt::format("encoding:  {}\nsegments:  {} ({} {})\n", templates::sms::to_string(text.coding()),
                             text.segments(), text.units(),
                             text.coding() == templates::sms::encoding::gsm7 ? "septets" : "UTF-16 units");
  if (opt.dry_run) {
    std::cout << "dry run: nothing sent, nothing recorded\n\n";
    if (*ch == queue::channel::email) {
      std::string shown = d.data;
      for (std::size_t at = 0; (at = shown.find("\r\n", at)) != std::string::npos;) shown.erase(at, 1);
      std::cout << shown;
    } else {
      std::cout << d.data << "\n";
    }
    return exit_ok;
  }
  if (!opt.ignore_quiet_hours) {
    const auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    if (auto q = engine::quiet_hours_at(cfg.quiet_hours, *ch, opt.category, now); q.quiet) {
      std::cerr << fmt::format("not sent: quiet hours for {} {} until {} (--ignore-quiet-hours sends now)\n",
                               opt.channel, opt.category, support::rfc3339(q.until));
      return exit_usage;
    }
  }

  asio::io_context ioc(1);
  int code = exit_runtime;
  asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    queue::connection conn(ex, cfg.redis);
    queue::keys keys(cfg.key_prefix);
    bool unreachable = false;
    if (auto problem = co_await check_consent(conn, cfg, keys, *ch, opt, address, unreachable)) {
      if (!unreachable) {
        std::cerr << "not sent: " << *problem << "\n";
        code = exit_usage;
        co_return;
      }
      // A category that needs no consent is sent without Redis (and without a record); one that does is not.
      if (cfg.policy(opt.category).consent_required) {
        std::cerr << "error: " << *problem << "\n";
        co_return;
      }
      std::cerr << "warning: withdrawals, suppressions and rate limits not checked, and nothing recorded: " << *problem
                << "\n";
    }
    std::string entry_id = "0-1";
    if (!unreachable) {
      if (auto problem = co_await take_token(conn, cfg, keys, def, address)) {
        std::cerr << "error: not sent: " << *problem << "\n";
        co_return;
      }
      auto recorded = co_await record_campaign(conn, keys, def, address, opt);
      if (!recorded) {
        std::cerr << "error: not sent: " << recorded.error().message << "\n";
        co_return;
      }
      entry_id = std::move(*recorded);
      if (auto problem = render_into(*renderer, def, entry_id, opt, d, text)) {  // cannot fail where the first did not
        co_await record_outcome(conn, cfg, keys, def, entry_id, opt, queue::final_state::failed, *problem, "");
        std::cerr << "error: " << *problem << "\n";
        co_return;
      }
    }
    one_delivery listener(ex);
    if (*ch == queue::channel::email) {
      std::cout << fmt::format("message-id: <{}>\n", renderer->message_id());
      auto messenger = adapters::smtp::make_smtp_messenger(ex, cfg.smtp, listener);
      co_await deliver(*messenger, listener, d);
    } else {
      auto messenger = adapters::sms_http::make_sms_messenger(ex, *cfg.sms.gateway, listener);
      co_await deliver(*messenger, listener, d);
    }
    const auto [state, reason] = verdict(d);
    std::cout << fmt::format("{}   {} ({})\n", *ch == queue::channel::email ? "relay:  " : "gateway:",
                             adapters::to_string(d.result), d.reply);
    if (d.retry_after.count() > 0) std::cout << fmt::format("retry after: {} ms\n", d.retry_after.count());
    code = d.result == adapters::outcome::accepted ? exit_ok : exit_runtime;
    if (unreachable) co_return;
    if (auto problem = co_await record_outcome(conn, cfg, keys, def, entry_id, opt, state, reason, d.reply)) {
      std::cerr << "error: " << *problem << "\n";
      code = exit_runtime;
    }
    std::cout << fmt::format("campaign:  {} ({}; budstikke status --campaign {})\n", def.id, queue::to_string(state),
                             def.id);
    if (state == queue::final_state::failed && d.result != adapters::outcome::permanent)
      std::cout << fmt::format("           a dead letter: budstikke dlq requeue --campaign {} hands it to the engine\n",
                               def.id);
  }, [&](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::cerr << "error: " << ex.what() << "\n";
    }
    code = exit_runtime;
  });
  ioc.run();
  return code;
}

void add_send(CLI::App& app, action& chosen) {
  struct options {
    common_options common;
    send_options snd;
  };
  auto o = std::make_shared<options>();
  auto& snd = o->snd;
  auto* cmd = app.add_subcommand("send", "Send one e-mail or SMS by hand through the configured relays or gateway "
                                         "(made and checked as a campaign's message is; recorded as a campaign of one)");
  add_common(cmd, o->common);
  cmd->add_option("--channel", snd.channel, "email or sms")->check(CLI::IsMember({"email", "sms"}))->capture_default_str();
  cmd->add_option("--to", snd.to, "E-mail address, or phone number (national numbers in sms.default_region)")->required();
  cmd->add_option("--member", snd.member, "Member id: whose consent is checked");
  cmd->add_option("--category", snd.category, "Message category (consent, List-Unsubscribe, quiet hours key on it)")
      ->capture_default_str();
  cmd->add_option("--tenant", snd.tenant, "Tenant, for its rate limit")->capture_default_str();
  cmd->add_option("--template", snd.template_dir, "Template directory (subject/text/html.mustache, or sms.mustache)");
  add_templates_root(cmd, snd.templates_root);
  cmd->add_option("--subject", snd.subject, "E-mail subject (a Mustache template, rendered with --data)");
  cmd->add_option("--text", snd.text, "The text: e-mail text/plain part or the SMS (a Mustache template)");
  cmd->add_option("--html", snd.html, "E-mail text/html part (a Mustache template)");
  cmd->add_option("--data", snd.data, "Template variables, a JSON object")->capture_default_str();
  cmd->add_option("--from", snd.from, "E-mail: address or 'Name <address>'; SMS: sender id (default sms.gateway.from)");
  cmd->add_option("--from-name", snd.from_name, "E-mail sender display name, when --from has none");
  cmd->add_flag("--dry-run", snd.dry_run, "Print the message; send and record nothing");
  cmd->add_flag("--ignore-quiet-hours", snd.ignore_quiet_hours, "Send even in the category's quiet hours");
  cmd->callback([&chosen, o] { chosen = [o] { return send_command(resolve_config(o->common), o->snd); }; });
}

}  // namespace budstikke::cli
