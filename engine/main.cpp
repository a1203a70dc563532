// budstikke <command>: run, enqueue, status, pause/resume/cancel, dlq, render, sink, send, bench. Exceptions stop here, as one clear
// message and exit code 2 (usage, configuration, input) or 1 (runtime).
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "adapters/sink/sms_sink.hpp"
#include "adapters/sink/smtp_sink.hpp"
#include "bench/bench.hpp"
#include "engine/commands.hpp"
#include "engine/control.hpp"
#include "engine/dlq.hpp"
#include "engine/config.hpp"
#include "engine/log.hpp"
#include "engine/preview.hpp"
#include "engine/runner.hpp"
#include "engine/watch.hpp"
#include "engine/send_command.hpp"
#include "engine/unsubscribe.hpp"

using namespace budstikke;

namespace {

struct common_options {
  std::string config_file;
  std::string redis_url;
  std::string key_prefix;
};

void add_common(CLI::App* cmd, common_options& o) {
  cmd->add_option("--config", o.config_file, "YAML configuration file")->check(CLI::ExistingFile);
  cmd->add_option("--redis", o.redis_url, "Redis URL, redis://[:password@]host[:port][/db] (overrides the config and BUDSTIKKE_REDIS)");
  cmd->add_option("--prefix", o.key_prefix, "Redis key prefix (default budstikke:)");
}

engine::config resolve_config(const common_options& o) {
  auto cfg = o.config_file.empty() ? engine::default_config() : engine::load_config(o.config_file);
  if (!o.redis_url.empty()) {
    std::string error;
    auto parsed = queue::parse_redis_url(o.redis_url, error);
    if (!parsed) throw engine::config_error("--redis: " + error);
    cfg.redis = *parsed;
  }
  if (!o.key_prefix.empty()) cfg.key_prefix = o.key_prefix;
  return cfg;
}

// host:port with a numeric port.
std::pair<std::string, std::uint16_t> parse_listen(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) throw engine::config_error(fmt::format("--listen '{}': expected HOST:PORT", s));
  int port = 0;
  try {
    port = std::stoi(s.substr(colon + 1));
  } catch (...) {
    port = -1;
  }
  if (port < 0 || port > 65535) throw engine::config_error(fmt::format("--listen '{}': bad port", s));
  return {s.substr(0, colon), static_cast<std::uint16_t>(port)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"budstikke: bulk e-mail and SMS dispatch for member organisations"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "budstikke 0.1.0");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));

  common_options run_common;
  bool until_idle = false;
  int workers = -1;
  auto* run = app.add_subcommand("run", "Run the engine: pull campaigns from Redis and send them");
  add_common(run, run_common);
  run->add_flag("--until-idle", until_idle, "Exit 0 once no campaign has pending work");
  std::string run_report;
  run->add_option("--report", run_report, "At exit, write counts, msg/s and latency quantiles to FILE as JSON");
  run->add_option("--workers", workers, "Shards (threads); default engine.workers, 0 = one per core")->check(CLI::Range(0, 256));

  common_options enq_common;
  engine::enqueue_options enq;
  auto* enqueue = app.add_subcommand("enqueue", "Enqueue a campaign from a recipient file and a template set");
  add_common(enqueue, enq_common);
  enqueue->add_option("--campaign", enq.campaign, "Campaign id (A-Z a-z 0-9 . _ -, at most 64)")->required();
  enqueue->add_option("--template", enq.template_dir, "Template directory (subject/text/html/sms.mustache, partials)")->required();
  enqueue->add_option("--recipients", enq.recipients_file, "Recipients: JSON Lines, or CSV with a header row (.csv)")->required();
  enqueue->add_option("--channel", enq.channel, "email or sms")->check(CLI::IsMember({"email", "sms"}))->capture_default_str();
  enqueue->add_option("--category", enq.category, "Message category (newsletter, tariff, winback, transactional, ...)")->capture_default_str();
  enqueue->add_option("--tenant", enq.tenant, "Tenant (union, region or branch)")->capture_default_str();
  enqueue->add_option("--priority", enq.priority, "0 (lowest) to 9 (highest)")->check(CLI::Range(0, 9))->capture_default_str();
  enqueue->add_option("--from", enq.from, "Sender address (e-mail)");
  enqueue->add_option("--from-name", enq.from_name, "Sender display name (e-mail)");
  enqueue->add_flag("--skip-invalid", enq.skip_invalid, "Enqueue the valid lines and report the others, instead of refusing the file");
  enqueue->add_option("--sms-max-segments", enq.sms_max_segments, "Longest SMS in segments; longer ones are skipped (default sms.max_segments)")->check(CLI::Range(1, 255));
  enqueue->add_flag("--dry-run", enq.dry_run, "Render the first recipients, report variables their data lacks, enqueue nothing");
  enqueue->add_option("--dry-run-count", enq.dry_run_count, "Recipients to render with --dry-run")->check(CLI::Range(1, 1000000))->capture_default_str();

  common_options render_common;
  engine::render_options rnd;
  auto* render = app.add_subcommand("render", "Print one rendered message (full MIME, or SMS text, encoding and segments)");
  add_common(render, render_common);
  render->add_option("--template", rnd.template_dir, "Template directory")->required();
  render->add_option("--data", rnd.data, "Recipient: a JSON object, or a recipient file whose first recipient is used")->required();
  render->add_option("--channel", rnd.channel, "email or sms")->check(CLI::IsMember({"email", "sms"}))->capture_default_str();
  render->add_option("--category", rnd.category, "Message category (decides List-Unsubscribe)")->capture_default_str();
  render->add_option("--campaign", rnd.campaign, "Campaign id shown in headers and tokens")->capture_default_str();
  render->add_option("--from", rnd.from, "Sender address")->capture_default_str();
  render->add_option("--from-name", rnd.from_name, "Sender display name");
  render->add_option("--sms-max-segments", rnd.sms_max_segments, "Longest SMS in segments (default sms.max_segments)")->check(CLI::Range(1, 255));

  common_options st_common;
  engine::status_options st;
  auto* status = app.add_subcommand("status", "Show campaigns and their counts");
  add_common(status, st_common);
  status->add_option("--campaign", st.campaign, "One campaign");
  status->add_flag("--json", st.json, "One JSON object per campaign and line");
  bool st_watch = false;
  double st_interval = 1.0;
  engine::watch_options watch;
  status->add_flag("--watch", st_watch, "Live view: progress bar, rate, ETA and counts (plain lines when stdout is not a terminal)");
  status->add_option("--interval", st_interval, "Seconds between refreshes with --watch")->check(CLI::Range(0.1, 3600.0))->capture_default_str();
  status->add_flag("--until-idle", watch.until_idle, "With --watch: exit 0 once no shown campaign is active");

  common_options ctl_common;
  std::string ctl_campaign;
  struct control_cmd { CLI::App* app; engine::control_action action; };
  std::vector<control_cmd> controls;
  for (auto [name, action, help] : {std::tuple{"pause", engine::control_action::pause, "Stop sending a campaign (in-flight messages finish)"},
                                    std::tuple{"resume", engine::control_action::resume, "Resume a paused campaign"},
                                    std::tuple{"cancel", engine::control_action::cancel, "Cancel a campaign: recipients not yet sent are counted cancelled"}}) {
    auto* cmd = app.add_subcommand(name, help);
    add_common(cmd, ctl_common);
    cmd->add_option("--campaign", ctl_campaign, "Campaign id")->required();
    controls.push_back({cmd, action});
  }

  auto* dlq = app.add_subcommand("dlq", "Dead letters (recipients recorded failed): list, show, requeue");
  dlq->require_subcommand(1);
  common_options dlq_common;
  engine::dlq_options dlq_opt;
  std::string dlq_campaign, dlq_entry;
  auto* dlq_list = dlq->add_subcommand("list", "List dead letters (member ids and reasons, no addresses)");
  add_common(dlq_list, dlq_common);
  dlq_list->add_option("--campaign", dlq_campaign, "One campaign (default: every campaign)");
  dlq_list->add_option("--reason", dlq_opt.reason, "Only those whose reason contains this text");
  dlq_list->add_option("--limit", dlq_opt.limit, "At most this many; 0 = all")->check(CLI::Range(0, 100000000))->capture_default_str();
  dlq_list->add_flag("--json", dlq_opt.json, "One JSON object per dead letter and line");
  auto* dlq_show = dlq->add_subcommand("show", "Show one dead letter with every field (address and data included)");
  add_common(dlq_show, dlq_common);
  dlq_show->add_option("ID", dlq_entry, "The dead letter's id (from dlq list)")->required();
  dlq_show->add_option("--campaign", dlq_campaign, "Campaign id")->required();
  dlq_show->add_flag("--json", dlq_opt.json, "As one JSON object");
  auto* dlq_requeue = dlq->add_subcommand("requeue", "Put dead letters back into their campaign, to be sent again (attempts start over)");
  add_common(dlq_requeue, dlq_common);
  dlq_requeue->add_option("--campaign", dlq_campaign, "Campaign id")->required();
  dlq_requeue->add_option("--reason", dlq_opt.reason, "Only those whose reason contains this text");
  dlq_requeue->add_option("--entry", dlq_opt.entries, "Only this dead letter (repeatable)");

  auto* sink = app.add_subcommand("sink", "Local test peers that accept and count messages");
  sink->require_subcommand(1);
  std::string sink_listen = "127.0.0.1:2525";
  adapters::sink::smtp_sink_options sink_opt;
  std::string maildir;
  long long delay_ms = 0;
  auto* sink_smtp = sink->add_subcommand("smtp", "An SMTP sink (PIPELINING, 8BITMIME, SMTPUTF8)");
  sink_smtp->add_option("--listen", sink_listen, "HOST:PORT to listen on (port 0: any free port)")->capture_default_str();
  sink_smtp->add_option("--maildir", maildir, "Store every message in DIR/new");
  sink_smtp->add_option("--transient-share", sink_opt.transient_share, "Share (0..1) of messages answered 451 4.3.0")->check(CLI::Range(0.0, 1.0));
  sink_smtp->add_option("--drop-after-dot-share", sink_opt.drop_after_dot_share, "Share (0..1) of messages whose connection is dropped after the final dot, unanswered")->check(CLI::Range(0.0, 1.0));
  sink_smtp->add_option("--reject-rcpt-containing", sink_opt.reject_rcpt_containing, "Answer 550 5.1.1 to recipients containing this text");
  sink_smtp->add_option("--reply-delay-ms", delay_ms, "Delay every reply by this many milliseconds")->check(CLI::Range(0, 60000));
  sink_smtp->add_option("--seed", sink_opt.seed, "Seed for the fault shares");
  std::string sink_auth;
  sink_smtp->add_option("--tls-cert", sink_opt.tls_cert_file, "PEM certificate (chain): offer STARTTLS")->check(CLI::ExistingFile);
  sink_smtp->add_option("--tls-key", sink_opt.tls_key_file, "PEM private key for --tls-cert (default: the same file)")->check(CLI::ExistingFile);
  sink_smtp->add_flag("--implicit-tls", sink_opt.implicit_tls, "TLS from the first byte (as on port 465) instead of STARTTLS");
  sink_smtp->add_option("--auth", sink_auth, "USER:PASS: require AUTH PLAIN/LOGIN before MAIL (offered only over TLS unless listening on loopback)");

  std::string sms_listen = "127.0.0.1:13013";
  std::string sms_kind = "kannel", sms_auth;
  adapters::sink::sms_sink_options sms_opt;
  long long sms_retry_after = 1, sms_slow_ms = 0;
  auto* sink_sms = sink->add_subcommand("sms", "An SMS gateway sink over HTTP (Kannel sendsms or JSON)");
  sink_sms->add_option("--listen", sms_listen, "HOST:PORT to listen on (port 0: any free port)")->capture_default_str();
  sink_sms->add_option("--kind", sms_kind, "kannel (GET/POST /cgi-bin/sendsms) or json (POST, JSON body)")->check(CLI::IsMember({"kannel", "json"}))->capture_default_str();
  sink_sms->add_option("--store", sms_opt.store, "Append every accepted message to FILE, one JSON object per line");
  sink_sms->add_option("--auth", sms_auth, "USER:PASS: Kannel's username/password fields, or HTTP basic auth (json)");
  sink_sms->add_option("--bearer", sms_opt.bearer_token, "json: require Authorization: Bearer TOKEN");
  sink_sms->add_option("--429-share", sms_opt.throttle_share, "Share (0..1) of requests answered 429 with Retry-After")->check(CLI::Range(0.0, 1.0));
  sink_sms->add_option("--retry-after", sms_retry_after, "Seconds in the Retry-After of those answers")->check(CLI::Range(0, 86400))->capture_default_str();
  sink_sms->add_option("--5xx-share", sms_opt.error_share, "Share (0..1) of requests answered 500")->check(CLI::Range(0.0, 1.0));
  sink_sms->add_option("--slow-share", sms_opt.slow_share, "Share (0..1) of requests answered only after --slow-ms (and not stored)")->check(CLI::Range(0.0, 1.0));
  sink_sms->add_option("--slow-ms", sms_slow_ms, "Delay of the slow answers")->check(CLI::Range(0, 600000));
  sink_sms->add_option("--drop-share", sms_opt.drop_share, "Share (0..1) of requests whose connection is closed unanswered")->check(CLI::Range(0.0, 1.0));
  sink_sms->add_option("--seed", sms_opt.seed, "Seed for the fault shares");

  common_options send_common;
  engine::send_options snd;
  auto* send = app.add_subcommand("send", "Send one SMS by hand through the configured gateway (consent checked as for campaigns)");
  add_common(send, send_common);
  send->add_option("--channel", snd.channel, "sms")->check(CLI::IsMember({"sms"}))->capture_default_str();
  send->add_option("--to", snd.to, "Phone number (national numbers in sms.default_region)")->required();
  send->add_option("--member", snd.member, "Member id: whose consent is checked");
  send->add_option("--category", snd.category, "Message category (decides whether consent is required)")->capture_default_str();
  send->add_option("--template", snd.template_dir, "Template directory with sms.mustache");
  send->add_option("--text", snd.text, "The text (a Mustache template, rendered with --data)");
  send->add_option("--data", snd.data, "Template variables, a JSON object")->capture_default_str();
  send->add_option("--from", snd.from, "Sender id (default sms.gateway.from)");

  common_options consent_common;
  engine::consent_withdraw_options cw;
  auto* consent = app.add_subcommand("consent", "Change a member's consent in Redis");
  consent->require_subcommand(1);
  auto* withdraw = consent->add_subcommand("withdraw", "Withdraw consent: from a signed unsubscribe token, or for a member, channel and category (idempotent)");
  add_common(withdraw, consent_common);
  withdraw->add_option("--token", cw.token, "A List-Unsubscribe token: withdraws its campaign's category for its channel and member");
  withdraw->add_option("--member", cw.member, "Member id (instead of --token)");
  withdraw->add_option("--channel", cw.channel, "email or sms (instead of --token)")->check(CLI::IsMember({"email", "sms"}));
  withdraw->add_option("--category", cw.category, "Category, or * for every category of the channel (instead of --token)");
  withdraw->add_option("--source", cw.source, "Recorded with the withdrawal")->capture_default_str();

  bench::bench_options bopt;
  auto* bench_cmd = app.add_subcommand("bench", "Load benchmark: Redis + SMTP sink + engine on this machine");
  bench::add_bench_options(bench_cmd, bopt);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : engine::exit_usage;
  }
  engine::log::set_min_level(log_level == "debug" ? engine::log::level::debug
                             : log_level == "warn" ? engine::log::level::warn
                             : log_level == "error" ? engine::log::level::error
                                                    : engine::log::level::info);
  try {
    if (*run) {
      auto cfg = resolve_config(run_common);
      if (workers >= 0) cfg.engine.workers = static_cast<std::size_t>(workers);
      return engine::run_engine(cfg, until_idle, run_report);
    }
    if (*enqueue) return engine::enqueue_command(resolve_config(enq_common), enq);
    if (*status && st_watch) {
      if (st.json) throw engine::config_error("--watch and --json do not go together");
      watch.campaign = st.campaign;
      watch.interval = std::chrono::milliseconds(static_cast<long long>(st_interval * 1000));
      return engine::watch_command(resolve_config(st_common), watch);
    }
    if (*status) return engine::status_command(resolve_config(st_common), st);
    for (auto& c : controls)
      if (*c.app) return engine::control_command(resolve_config(ctl_common), ctl_campaign, c.action);
    if (*render) return engine::render_command(resolve_config(render_common), rnd);
    if (*dlq) {
      if (!dlq_campaign.empty()) dlq_opt.campaign = dlq_campaign;
      if (*dlq_show) {
        dlq_opt.action = engine::dlq_action::show;
        dlq_opt.entries.assign(1, dlq_entry);
      } else if (*dlq_requeue) {
        dlq_opt.action = engine::dlq_action::requeue;
        if (!dlq_opt.entries.empty() && !dlq_opt.reason.empty())
          throw engine::config_error("--entry and --reason do not go together");
      }
      return engine::dlq_command(resolve_config(dlq_common), dlq_opt);
    }
    if (*sink_smtp) {
      auto [host, port] = parse_listen(sink_listen);
      sink_opt.listen_host = host;
      sink_opt.port = port;
      if (!maildir.empty()) sink_opt.maildir = maildir;
      sink_opt.reply_delay = std::chrono::milliseconds(delay_ms);
      if (sink_opt.implicit_tls && sink_opt.tls_cert_file.empty()) {
        std::cerr << "error: --implicit-tls needs --tls-cert\n";
        return engine::exit_usage;
      }
      if (!sink_auth.empty()) {
        auto colon = sink_auth.find(':');
        if (colon == std::string::npos || colon == 0) {
          std::cerr << "error: --auth expects USER:PASS\n";
          return engine::exit_usage;
        }
        sink_opt.auth_user = sink_auth.substr(0, colon);
        sink_opt.auth_password = sink_auth.substr(colon + 1);
      }
      return adapters::sink::run_smtp_sink_until_signal(sink_opt);
    }
    if (*sink_sms) {
      auto [host, port] = parse_listen(sms_listen);
      sms_opt.listen_host = host;
      sms_opt.port = port;
      sms_opt.kind = sms_kind == "json" ? adapters::sink::sms_sink_kind::json : adapters::sink::sms_sink_kind::kannel;
      sms_opt.retry_after = std::chrono::seconds(sms_retry_after);
      sms_opt.slow_delay = std::chrono::milliseconds(sms_slow_ms);
      if (!sms_auth.empty()) {
        auto colon = sms_auth.find(':');
        if (colon == std::string::npos || colon == 0) {
          std::cerr << "error: --auth expects USER:PASS\n";
          return engine::exit_usage;
        }
        sms_opt.username = sms_auth.substr(0, colon);
        sms_opt.password = sms_auth.substr(colon + 1);
      }
      return adapters::sink::run_sms_sink_until_signal(sms_opt);
    }
    if (*send) return engine::send_command(resolve_config(send_common), snd);
    if (*withdraw) return engine::consent_withdraw_command(resolve_config(consent_common), cw);
    if (*bench_cmd) return bench::run_bench(bopt);
  } catch (const engine::config_error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return engine::exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return engine::exit_runtime;
  }
  return engine::exit_usage;
}
