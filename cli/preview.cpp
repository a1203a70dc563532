#include "cli/preview.hpp"

#include <iostream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/template_set.hpp"
#include "cli/recipients_file.hpp"
#include "engine/renderer.hpp"

namespace budstikke::cli {
using engine::campaign_renderer;
using engine::render_failure;
namespace {

void print_sms(const templates::sms::message& m, std::size_t max_segments, std::ostream& out) {
  out << m.text() << "\n\n";
  out << fmt::format("encoding: {}\n", templates::sms::to_string(m.coding()));
  out << fmt::format("{}: {}\n", m.coding() == templates::sms::encoding::gsm7 ? "septets" : "UTF-16 units", m.units());
  out << fmt::format("segments: {} (at most {})\n", m.segments(), max_segments);
  if (m.segments() > 1)
    for (std::size_t i = 0; i < m.segments(); ++i) out << fmt::format("  segment {}: {}\n", i + 1, m.segment(i));
  const auto changes = m.describe_changes();
  out << "normalised: " << (changes.empty() ? "nothing" : changes) << "\n";
}

// One recipient through the renderer, as the engine would do it; prints the message when
// `print` is set. The failure, if any.
std::optional<render_failure> render_one(campaign_renderer& r, queue::channel kind, const recipient_record& rec,
                                         bool print) {
  if (kind == queue::channel::sms) {
    templates::sms::message m;
    auto failure = r.render_sms(rec.to, rec.member, rec.data_json, m);
    if (!failure && print) print_sms(m, r.max_sms_segments(), std::cout);
    return failure;
  }
  adapters::delivery d;
  auto failure = r.prepare_email("0-0", rec.to, rec.member, rec.data_json, d);
  if (!failure && print) {
    std::cerr << fmt::format("envelope: MAIL FROM:<{}> RCPT TO:<{}>{}\n", d.envelope_from, d.envelope_to,
                             d.needs_smtputf8 ? " (needs SMTPUTF8)" : "");
    std::cout << d.data;
  }
  return failure;
}

std::unique_ptr<campaign_renderer> compile_or_report(const queue::campaign_definition& def, const config& cfg) {
  auto r = campaign_renderer::compile(def, cfg);
  if (!r) {
    std::cerr << "error: " << r.error().message << "\n";
    return nullptr;
  }
  return std::move(*r);
}

}  // namespace

int render_command(const config& cfg, const render_options& opt) {
  queue::campaign_definition def;
  def.id = opt.campaign;
  def.kind = queue::parse_channel(opt.channel).value_or(queue::channel::email);
  def.category = opt.category;
  def.from_address = opt.from;
  def.from_name = opt.from_name;
  def.sms_max_segments = opt.sms_max_segments;
  if (!load_templates_into(opt.template_dir, opt.templates_root, def)) return exit_usage;

  recipient_record rec;
  if (!opt.data.empty() && opt.data.front() == '{') {
    if (auto problem = parse_jsonl_line(opt.data, rec)) {
      std::cerr << "error: --data: " << *problem << "\n";
      return exit_usage;
    }
  } else {
    try {
      auto reader = recipients_reader::open(opt.data);
      std::optional<line_problem> problem;
      if (!reader->next(rec, problem)) {
        std::cerr << fmt::format("error: {}: no recipients\n", opt.data);
        return exit_usage;
      }
      if (problem) {
        std::cerr << fmt::format("error: {}:{}: {}\n", opt.data, problem->line, problem->reason);
        return exit_usage;
      }
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      return exit_usage;
    }
  }

  auto renderer = compile_or_report(def, cfg);
  if (!renderer) return exit_usage;
  std::set<std::string, std::less<>> missing;
  const templates::missing_variable_fn on_missing = [&](std::string_view name) { missing.emplace(name); };
  renderer->set_missing_variable_handler(&on_missing);
  if (auto failure = render_one(*renderer, def.kind, rec, true)) {
    std::cerr << fmt::format("error: the message would be {}: {}\n", queue::to_string(failure->state), failure->reason);
    return exit_usage;
  }
  for (const auto& name : missing) std::cerr << fmt::format("warning: the data lacks '{}' (rendered empty)\n", name);
  return exit_ok;
}

int dry_run_enqueue(const config& cfg, const queue::campaign_definition& def, const std::string& recipients_file,
                    std::size_t count) {
  auto renderer = compile_or_report(def, cfg);
  if (!renderer) return exit_usage;
  std::set<std::string, std::less<>> lacking;  // this recipient's
  std::map<std::string, std::size_t, std::less<>> lacking_count;
  const templates::missing_variable_fn on_missing = [&](std::string_view name) { lacking.emplace(name); };
  renderer->set_missing_variable_handler(&on_missing);

  std::size_t seen = 0, rendered = 0;
  bool printed = false;
  try {
    auto reader = recipients_reader::open(recipients_file);
    recipient_record rec;
    std::optional<line_problem> problem;
    while (seen < count && reader->next(rec, problem)) {
      ++seen;
      if (problem) {
        std::cerr << fmt::format("{}:{}: {}\n", recipients_file, problem->line, problem->reason);
        continue;
      }
      lacking.clear();
      if (!printed) std::cout << fmt::format("--- the message for line {} ---\n", rec.line);
      if (auto failure = render_one(*renderer, def.kind, rec, !printed)) {
        if (!printed) std::cout << "(none)\n";
        std::cerr << fmt::format("{}:{}: {}: {}\n", recipients_file, rec.line, queue::to_string(failure->state),
                                 failure->reason);
      } else {
        ++rendered;
      }
      printed = true;
      for (const auto& name : lacking) ++lacking_count[name];
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return exit_usage;
  }
  std::cout << fmt::format("--- dry run: rendered {} of the first {} recipients of {}; nothing was enqueued ---\n",
                           rendered, seen, recipients_file);
  if (lacking_count.empty()) {
    std::cout << "every variable the templates use was in the data\n";
  } else {
    std::cout << "variables the templates use but the data lacks (rendered empty):\n";
    for (const auto& [name, n] : lacking_count) std::cout << fmt::format("  {}: {} of {} recipients\n", name, n, seen);
  }
  return exit_ok;
}

void add_render(CLI::App& app, action& chosen) {
  struct options {
    common_options common;
    render_options rnd;
  };
  auto o = std::make_shared<options>();
  auto& rnd = o->rnd;
  auto* cmd = app.add_subcommand("render", "Print one rendered message (full MIME, or SMS text, encoding and segments)");
  add_common(cmd, o->common);
  cmd->add_option("--template", rnd.template_dir, "Template directory")->required();
  add_templates_root(cmd, rnd.templates_root);
  cmd->add_option("--data", rnd.data, "Recipient: a JSON object, or a recipient file whose first recipient is used")->required();
  cmd->add_option("--channel", rnd.channel, "email or sms")->check(CLI::IsMember({"email", "sms"}))->capture_default_str();
  cmd->add_option("--category", rnd.category, "Message category (decides List-Unsubscribe)")->capture_default_str();
  cmd->add_option("--campaign", rnd.campaign, "Campaign id shown in headers and tokens")->capture_default_str();
  cmd->add_option("--from", rnd.from, "Sender address")->capture_default_str();
  cmd->add_option("--from-name", rnd.from_name, "Sender display name");
  cmd->add_option("--sms-max-segments", rnd.sms_max_segments, "Longest SMS in segments (default sms.max_segments)")->check(CLI::Range(1, 255));
  cmd->callback([&chosen, o] { chosen = [o] { return render_command(resolve_config(o->common), o->rnd); }; });
}

}  // namespace budstikke::cli
