#include "engine/commands.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <set>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "engine/log.hpp"
#include "engine/preview.hpp"
#include "engine/recipients_file.hpp"
#include "queue/campaign_store.hpp"
#include "support/run_sync.hpp"
#include "templates/address.hpp"
#include "templates/mustache.hpp"

namespace budstikke::engine {
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot read", p.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

using support::run_sync;

constexpr std::size_t max_problems_printed = 100;

}  // namespace

template_set_files load_template_set(const std::string& dir) {
  template_set_files set;
  fs::path root(dir);
  if (!fs::is_directory(root)) throw std::runtime_error(fmt::format("{}: not a template directory", dir));
  static const std::set<std::string, std::less<>> main_names{"subject", "text", "html", "sms"};
  auto collect = [&](const fs::path& folder, bool top) {
    if (!fs::is_directory(folder)) return;
    for (const auto& entry : fs::directory_iterator(folder)) {
      if (!entry.is_regular_file() || entry.path().extension() != ".mustache") continue;
      auto stem = entry.path().stem().string();
      if (top && main_names.count(stem)) set.templates[stem] = read_file(entry.path());
      else set.partials[stem] = read_file(entry.path());
    }
  };
  // A shared layout first, so that the set's own partials of the same name win.
  std::string layout_note;
  if (auto extends = root / "extends"; fs::exists(extends)) {
    auto line = read_file(extends);
    line = line.substr(0, line.find_first_of("\r\n"));
    auto layout = (root / line).lexically_normal();
    if (line.empty() || !fs::is_directory(layout))
      throw std::runtime_error(fmt::format("{}: '{}' is not a layout directory", extends.string(), line));
    collect(layout, false);
    collect(layout / "partials", false);
    layout_note = fmt::format(", nor in the layout {}", layout.string());
  }
  collect(root, true);
  collect(root / "partials", false);
  templates::partial_sources partials(set.partials.begin(), set.partials.end());
  for (const auto& [name, source] : set.templates) {
    auto file = (root / (name + ".mustache")).string();
    auto compiled = templates::compiled_template::compile(source, partials, file);
    if (!compiled) throw std::runtime_error(compiled.error().to_string());
    if (!compiled->unresolved_partials().empty())
      throw std::runtime_error(fmt::format("{}: partial '{}' is not in {} or its partials/{}", file,
                                           compiled->unresolved_partials().front(), dir, layout_note));
  }
  return set;
}

bool load_templates_into(const std::string& dir, queue::campaign_definition& def) {
  try {
    auto set = load_template_set(dir);
    def.templates = std::move(set.templates);
    def.partials = std::move(set.partials);
    return true;
  } catch (const std::exception& e) {
    std::cerr << "error: template: " << e.what() << "\n";
    return false;
  }
}

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
  def.created_at = queue::now_rfc3339();
  if (def.kind == queue::channel::email) {
    if (def.from_address.empty()) {
      std::cerr << "error: --from is required for e-mail campaigns\n";
      return exit_usage;
    }
    if (auto problem = templates::email_address_problem(def.from_address)) {
      std::cerr << fmt::format("error: --from: {}\n", *problem);
      return exit_usage;
    }
  }
  if (!load_templates_into(opt.template_dir, def)) return exit_usage;
  if (def.kind == queue::channel::email && !def.templates.count("text") && !def.templates.count("html")) {
    std::cerr << fmt::format("error: {}: an e-mail template set needs text.mustache or html.mustache\n", opt.template_dir);
    return exit_usage;
  }
  if (def.kind == queue::channel::sms && !def.templates.count("sms")) {
    std::cerr << fmt::format("error: {}: an SMS template set needs sms.mustache\n", opt.template_dir);
    return exit_usage;
  }
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
  std::string error;
  auto ec = run_sync([&]() -> asio::awaitable<std::error_code> {
    auto ex = co_await asio::this_coro::executor;
    queue::connection conn(ex, cfg.redis);
    queue::campaign_writer writer(conn, keys, def);
    if (auto ec = co_await writer.async_create(error)) co_return ec;
    auto reader = recipients_reader::open(opt.recipients_file);
    recipient_record rec;
    std::optional<line_problem> problem;
    while (reader->next(rec, problem)) {
      if (problem || bad_lines.count(rec.line)) continue;
      writer.add(rec.to, rec.member, rec.data_json);
      if (writer.should_flush())
        if (auto ec = co_await writer.async_flush(error)) co_return ec;
    }
    co_return co_await writer.async_seal(error);
  }());
  if (ec) {
    std::cerr << "error: " << error << "\n";
    return exit_runtime;
  }
  std::cout << fmt::format("enqueued campaign {}: {} recipients{}\n", def.id, good,
                           bad ? fmt::format(" ({} lines skipped, see above)", bad) : "");
  return exit_ok;
}

int status_command(const config& cfg, const status_options& opt) {
  queue::keys keys(cfg.key_prefix);
  std::string error;
  std::vector<queue::campaign_status> rows;
  bool missing = false;
  auto ec = run_sync([&]() -> asio::awaitable<std::error_code> {
    auto ex = co_await asio::this_coro::executor;
    queue::connection conn(ex, cfg.redis);
    std::vector<std::string> ids;
    if (auto ec = co_await queue::async_list_campaigns(conn, keys, false, ids, opt.campaign)) {
      error = fmt::format("Redis at {}: {}", queue::describe(cfg.redis), ec.message());
      co_return ec;
    }
    for (const auto& id : ids) {
      auto s = co_await queue::async_read_status(conn, keys, id, error);
      if (!s) {
        if (error.find("does not exist") != std::string::npos && opt.campaign) missing = true;
        co_return std::make_error_code(std::errc::io_error);
      }
      rows.push_back(std::move(*s));
    }
    co_return std::error_code{};
  }());
  if (ec) {
    std::cerr << "error: " << error << "\n";
    return missing ? exit_usage : exit_runtime;
  }
  if (opt.json) {
    for (const auto& s : rows) {
      std::string line = "{\"id\":";
      log::append_json_string(line, s.id);
      line += ",\"state\":";
      log::append_json_string(line, s.state);
      line += ",\"channel\":";
      log::append_json_string(line, s.channel);
      line += ",\"category\":";
      log::append_json_string(line, s.category);
      line += ",\"tenant\":";
      log::append_json_string(line, s.tenant);
      line += fmt::format(",\"priority\":{},\"total\":{},\"enqueued\":{}", s.priority,
                          s.total ? std::to_string(*s.total) : "null", s.enqueued);
      for (auto st : queue::all_final_states) line += fmt::format(",\"{}\":{}", queue::to_string(st), s.count(st));
      line += fmt::format(",\"cancelled\":{},\"resent\":{},\"pending\":{},\"retrying\":{},\"dead_letters\":{},"
                          "\"created_at\":",
                          s.cancelled(), s.resent, s.pending(), s.waiting_retry(), s.dead_letters);
      log::append_json_string(line, s.created_at);
      line += ",\"finished_at\":";
      if (s.finished_at.empty()) line += "null";
      else log::append_json_string(line, s.finished_at);
      line += "}\n";
      std::cout << line;
    }
    return exit_ok;
  }
  if (rows.empty()) {
    std::cout << "no campaigns\n";
    return exit_ok;
  }
  std::cout << fmt::format("{:<24} {:<9} {:<6} {:>9} {:>9} {:>7} {:>8} {:>9} {:>9} {:>9} {:>8}\n", "CAMPAIGN", "STATE",
                           "CHAN", "TOTAL", "SENT", "FAILED", "SKIPPED", "AMBIGUOUS", "CANCELLED", "PENDING", "RETRYING");
  for (const auto& s : rows) {
    std::cout << fmt::format("{:<24} {:<9} {:<6} {:>9} {:>9} {:>7} {:>8} {:>9} {:>9} {:>9} {:>8}\n", s.id, s.state, s.channel,
                             s.total ? std::to_string(*s.total) : "(open)", s.count(queue::final_state::sent),
                             s.count(queue::final_state::failed), s.count(queue::final_state::skipped),
                             s.count(queue::final_state::ambiguous), s.cancelled(), s.pending(), s.waiting_retry());
  }
  return exit_ok;
}

}  // namespace budstikke::engine
