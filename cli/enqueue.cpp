#include "cli/enqueue.hpp"

#include <iostream>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "support/log.hpp"
#include "cli/message_options.hpp"
#include "cli/preview.hpp"
#include "cli/recipients_file.hpp"
#include "cli/template_set.hpp"
#include "queue/campaign_store.hpp"
#include "support/run_sync.hpp"
#include "templates/address.hpp"
#include "templates/mustache.hpp"

#include "cli/command.hpp"
#include "support/rfc3339.hpp"

namespace budstikke::cli {
namespace asio = boost::asio;

namespace {

using support::run_sync;

constexpr std::size_t max_problems_printed = 100;

}  // namespace

int enqueue_command(const config& cfg, const enqueue_options& opt) {
  queue::campaign_definition def;
  def.id = opt.campaign;
  if (!queue::valid_campaign_id(def.id)) {
    std::cerr << fmt::format("error: campaign id '{}' is not valid: use 1-{} of A-Z a-z 0-9 . _ -\n", def.id,
                             queue::max_id_length);
    return exit_usage;
  }
  auto ch = queue::parse_channel(opt.channel);
  if (!ch) {
    std::cerr << fmt::format("error: --channel '{}': expected email or sms\n", opt.channel);
    return exit_usage;
  }
  def.kind = *ch;
  def.category = opt.category;
  def.tenant = opt.tenant;
  def.priority = opt.priority;
  def.from_address = opt.from;
  def.from_name = opt.from_name;
  def.sms_max_segments = opt.sms_max_segments;
  def.created_at = support::now_rfc3339();
  if (def.kind == queue::channel::email) {
    if (!sender_into(opt.from, opt.from_name, def)) return exit_usage;
  }
  if (!load_templates_into(opt.template_dir, opt.templates_root, def)) return exit_usage;
  if (!template_set_fits(opt.template_dir, def)) return exit_usage;
  if (opt.dry_run) return dry_run_enqueue(cfg, def, opt.recipients_file, opt.dry_run_count);

  // Pass 1: check every line before anything is written, so a refused file leaves no trace.
  std::size_t good = 0, bad = 0;
  std::unordered_set<std::string> seen;
  std::unordered_set<std::size_t> bad_lines;
  try {
    auto reader = recipients_reader::open(opt.recipients_file);
    recipient_record rec;
    std::optional<line_problem> problem;
    while (reader->next(rec, problem)) {
      if (!problem)
        if (auto why = queue::recipient_size_problem(rec.to, rec.member, rec.data_json))
          problem = line_problem{rec.line, std::move(*why)};
      if (!problem && def.kind == queue::channel::email) {
        std::string ascii;
        bool needs_smtputf8 = false;
        if (auto why = templates::prepare_email_address(rec.to, ascii, needs_smtputf8))
          problem = line_problem{rec.line, std::string(*why)};
      }
      if (!problem) {
        std::string key = rec.to;
        for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (!seen.insert(std::move(key)).second) problem = line_problem{rec.line, "duplicate recipient (same 'to' as an earlier line)"};
      }
      if (problem) {
        if (++bad <= max_problems_printed)
          std::cerr << fmt::format("{}:{}: {}\n", opt.recipients_file, problem->line, problem->reason);
        bad_lines.insert(problem->line);
      } else {
        ++good;
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return exit_usage;
  }
  seen.clear();
  if (bad > max_problems_printed)
    std::cerr << fmt::format("... and {} more problems\n", bad - max_problems_printed);
  if (bad > 0 && !opt.skip_invalid) {
    std::cerr << fmt::format("error: {}: {} of {} recipients have problems; nothing was enqueued "
                             "(--skip-invalid enqueues the {} good ones)\n",
                             opt.recipients_file, bad, good + bad, good);
    return exit_usage;
  }
  if (good == 0) {
    std::cerr << fmt::format("error: {}: no recipients\n", opt.recipients_file);
    return exit_usage;
  }

  // Pass 2: write.
  queue::keys keys(cfg.key_prefix);
  auto written = run_sync([&]() -> asio::awaitable<support::result<void>> {
    auto ex = co_await asio::this_coro::executor;
    queue::connection conn(ex, cfg.redis);
    queue::campaign_writer writer(conn, keys, def);
    if (auto created = co_await writer.async_create(); !created) co_return created;
    auto reader = recipients_reader::open(opt.recipients_file);
    recipient_record rec;
    std::optional<line_problem> problem;
    while (reader->next(rec, problem)) {
      if (problem || bad_lines.count(rec.line)) continue;
      writer.add(rec.to, rec.member, rec.data_json);
      if (writer.should_flush())
        if (auto flushed = co_await writer.async_flush(); !flushed) co_return flushed;
    }
    co_return co_await writer.async_seal();
  }());
  if (!written) {
    std::cerr << "error: " << written.error().message << "\n";
    return exit_runtime;
  }
  std::cout << fmt::format("enqueued campaign {}: {} recipients{}\n", def.id, good,
                           bad ? fmt::format(" ({} lines skipped, see above)", bad) : "");
  return exit_ok;
}

void add_enqueue(CLI::App& app, action& chosen) {
  struct options {
    common_options common;
    enqueue_options enq;
  };
  auto o = std::make_shared<options>();
  auto& enq = o->enq;
  auto* cmd = app.add_subcommand("enqueue", "Enqueue a campaign from a recipient file and a template set");
  add_common(cmd, o->common);
  cmd->add_option("--campaign", enq.campaign, "Campaign id (A-Z a-z 0-9 . _ -, at most 64)")->required();
  cmd->add_option("--template", enq.template_dir, "Template directory (subject/text/html/sms.mustache, partials)")->required();
  add_templates_root(cmd, enq.templates_root);
  cmd->add_option("--recipients", enq.recipients_file, "Recipients: JSON Lines, or CSV with a header row (.csv)")->required();
  cmd->add_option("--channel", enq.channel, "email or sms")->check(CLI::IsMember({"email", "sms"}))->capture_default_str();
  cmd->add_option("--category", enq.category, "Message category (newsletter, tariff, winback, transactional, ...)")->capture_default_str();
  cmd->add_option("--tenant", enq.tenant, "Tenant (union, region or branch)")->capture_default_str();
  cmd->add_option("--priority", enq.priority, "0 (lowest) to 9 (highest)")->check(CLI::Range(0, 9))->capture_default_str();
  cmd->add_option("--from", enq.from, "Sender (e-mail): address, or 'Name <address>'");
  cmd->add_option("--from-name", enq.from_name, "Sender display name (e-mail), when --from has none");
  cmd->add_flag("--skip-invalid", enq.skip_invalid, "Enqueue the valid lines and report the others, instead of refusing the file");
  cmd->add_option("--sms-max-segments", enq.sms_max_segments, "Longest SMS in segments; longer ones are skipped (default sms.max_segments)")->check(CLI::Range(1, 255));
  cmd->add_flag("--dry-run", enq.dry_run, "Render the first recipients, report variables their data lacks, enqueue nothing");
  cmd->add_option("--dry-run-count", enq.dry_run_count, "Recipients to render with --dry-run")->check(CLI::Range(1, 1000000))->capture_default_str();
  cmd->callback([&chosen, o] { chosen = [o] { return enqueue_command(resolve_config(o->common), o->enq); }; });
}

}  // namespace budstikke::cli
