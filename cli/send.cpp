#include "cli/send.hpp"

#include <iostream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "adapters/sms_http/messenger.hpp"
#include "adapters/sms_http/phone.hpp"
#include "adapters/sms_http/protocol.hpp"
#include "cli/command.hpp"
#include "cli/template_set.hpp"
#include "engine/event.hpp"
#include "engine/renderer.hpp"
#include "queue/consent.hpp"

namespace budstikke::cli {
using engine::campaign_renderer;
using engine::event;
namespace asio = boost::asio;
namespace {

struct one_delivery final : adapters::delivery_listener {
  explicit one_delivery(asio::any_io_executor ex) : done(ex) {}
  void on_delivered(adapters::delivery&) override {
    reported = true;
    done.notify();
  }
  event done;
  bool reported = false;
};

// Consent and suppression as the engine reads them when it sends: the reason not to send, or
// nullopt. Sets `unreachable` when Redis could not be asked.
asio::awaitable<std::optional<std::string>> check_consent(const config& cfg, const send_options& opt,
                                                          std::string_view number, bool& unreachable) {
  queue::connection conn(co_await asio::this_coro::executor, cfg.redis);
  queue::keys keys(cfg.key_prefix);
  queue::request req;
  const auto& policy = cfg.policy(opt.category);
  queue::append_consent_lookup(req, keys, queue::channel::sms, opt.category, opt.member, number, policy.check_consent);
  std::vector<queue::reply_ptr> replies;
  if (auto ec = co_await conn.async_exec(req, replies)) {
    unreachable = true;
    co_return fmt::format("cannot read consent from Redis: {}", ec.message());
  }
  const redisReply* consent = policy.check_consent ? replies[0].get() : nullptr;
  co_return queue::lookup_problem(consent, replies.back().get(), policy.consent_required, !opt.member.empty());
}

}  // namespace

int send_command(const config& cfg, const send_options& opt) {
  if (opt.channel != "sms") {
    std::cerr << "error: send: only --channel sms is supported; e-mail goes through enqueue\n";
    return exit_usage;
  }
  if (!cfg.sms.gateway) {
    std::cerr << "error: send: no SMS gateway is configured (sms.gateway)\n";
    return exit_usage;
  }
  if (opt.template_dir.empty() == opt.text.empty()) {
    std::cerr << "error: send: give either --template or --text\n";
    return exit_usage;
  }
  if (adapters::sms_http::credentials_in_clear(*cfg.sms.gateway))
    std::cerr << "warning: the SMS gateway's credentials go over plain http:// to a host that is not loopback; "
                 "use https://\n";
  adapters::delivery d;
  if (auto problem = adapters::sms_http::normalise_phone(opt.to, cfg.sms.default_region, d.envelope_to)) {
    std::cerr << "error: --to: " << *problem << "\n";
    return exit_usage;
  }

  queue::campaign_definition def;
  def.id = "send";
  def.kind = queue::channel::sms;
  def.category = opt.category;
  if (opt.text.empty()) {
    if (!load_templates_into(opt.template_dir, opt.templates_root, def)) return exit_usage;
  } else {
    def.templates["sms"] = opt.text;
  }
  auto compiled = campaign_renderer::compile(def, cfg);
  if (!compiled) {
    std::cerr << "error: " << compiled.error().message << "\n";
    return exit_usage;
  }
  auto& renderer = *compiled;
  templates::sms::message text;
  if (auto failure = renderer->render_sms(d.envelope_to, opt.member, opt.data, text)) {
    std::cerr << "error: " << failure->reason << "\n";
    return exit_usage;
  }
  std::cout << fmt::format("to:        {}\nencoding:  {}\nsegments:  {} ({} {})\n", d.envelope_to,
                           templates::sms::to_string(text.coding()), text.segments(), text.units(),
                           text.coding() == templates::sms::encoding::gsm7 ? "septets" : "UTF-16 units");
  d.data = text.text();
  d.sms_ucs2 = text.coding() == templates::sms::encoding::ucs2;
  d.sms_segments = static_cast<std::uint16_t>(text.segments());
  d.envelope_from = opt.from.empty() ? cfg.sms.gateway->default_from : opt.from;

  asio::io_context ioc(1);
  int code = exit_runtime;
  asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
    bool unreachable = false;
    if (auto problem = co_await check_consent(cfg, opt, d.envelope_to, unreachable)) {
      if (!unreachable) {
        std::cerr << "not sent: " << *problem << "\n";
        code = exit_usage;
        co_return;
      }
      // A category that needs no consent is sent without Redis; one that does is not.
      if (cfg.policy(opt.category).consent_required) {
        std::cerr << "error: " << *problem << "\n";
        co_return;
      }
      std::cerr << "warning: withdrawals and suppressions not checked: " << *problem << "\n";
    }
    auto ex = co_await asio::this_coro::executor;
    one_delivery listener(ex);
    auto messenger = adapters::sms_http::make_sms_messenger(ex, *cfg.sms.gateway, listener);
    messenger->push(d);
    while (!listener.reported) co_await listener.done.wait_for(std::chrono::seconds(1));
    messenger->close();
    co_await messenger->async_wait_closed();
    std::cout << fmt::format("gateway:   {} ({})\n", adapters::to_string(d.result), d.reply);
    if (d.retry_after.count() > 0) std::cout << fmt::format("retry after: {} ms\n", d.retry_after.count());
    code = d.result == adapters::outcome::accepted ? exit_ok : exit_runtime;
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
  auto* cmd = app.add_subcommand("send", "Send one SMS by hand through the configured gateway (consent checked as for campaigns)");
  add_common(cmd, o->common);
  cmd->add_option("--channel", snd.channel, "sms")->check(CLI::IsMember({"sms"}))->capture_default_str();
  cmd->add_option("--to", snd.to, "Phone number (national numbers in sms.default_region)")->required();
  cmd->add_option("--member", snd.member, "Member id: whose consent is checked");
  cmd->add_option("--category", snd.category, "Message category (decides whether consent is required)")->capture_default_str();
  cmd->add_option("--template", snd.template_dir, "Template directory with sms.mustache");
  add_templates_root(cmd, snd.templates_root);
  cmd->add_option("--text", snd.text, "The text (a Mustache template, rendered with --data)");
  cmd->add_option("--data", snd.data, "Template variables, a JSON object")->capture_default_str();
  cmd->add_option("--from", snd.from, "Sender id (default sms.gateway.from)");
  cmd->callback([&chosen, o] { chosen = [o] { return send_command(resolve_config(o->common), o->snd); }; });
}

}  // namespace budstikke::cli
