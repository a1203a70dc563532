#include "cli/template_set.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "templates/mustache.hpp"

namespace budstikke::cli {
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot read", p.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// True when `p` (canonical) is `root` (canonical) or inside it.
bool within(const fs::path& root, const fs::path& p) {
  const auto rel = p.lexically_relative(root);
  return !rel.empty() && *rel.begin() != "..";
}

// `p` with every symlink resolved; std::runtime_error naming `p` when that fails or leaves `root`.
fs::path confined(const fs::path& root, const fs::path& p, std::string_view what) {
  std::error_code ec;
  auto real = fs::weakly_canonical(p, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: cannot resolve: {}", p.string(), ec.message()));
  if (!within(root, real))
    throw std::runtime_error(fmt::format("{}: {} {}, outside the templates root {} (--templates-root widens it)",
                                         p.string(), what, real.string(), root.string()));
  return real;
}

}  // namespace

template_set_files load_template_set(const std::string& dir, const std::string& templates_root) {
  template_set_files set;
  fs::path root(dir);
  if (!fs::is_directory(root)) throw std::runtime_error(fmt::format("{}: not a template directory", dir));
  std::error_code ec;
  const auto real_set = fs::canonical(root, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: cannot resolve: {}", dir, ec.message()));
  // A set may pull in only files under the templates root: nothing else readable to the process
  // (a key, /etc/passwd) can end up in a message.
  const auto confine_to = templates_root.empty() ? real_set.parent_path() : fs::canonical(templates_root, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: templates root: {}", templates_root, ec.message()));
  confined(confine_to, root, "the template set resolves to");
  static const std::set<std::string, std::less<>> main_names{"subject", "text", "html", "sms"};
  auto collect = [&](const fs::path& folder, bool top) {
    if (!fs::is_directory(folder)) return;
    for (const auto& entry : fs::directory_iterator(folder)) {
      if (!entry.is_regular_file() || entry.path().extension() != ".mustache") continue;
      const auto real = confined(confine_to, entry.path(), "links to");
      auto stem = entry.path().stem().string();
      if (top && main_names.count(stem)) set.templates[stem] = read_file(real);
      else set.partials[stem] = read_file(real);
    }
  };
  // A shared layout first, so that the set's own partials of the same name win.
  std::string layout_note;
  if (auto extends = root / "extends"; fs::exists(extends)) {
    auto line = read_file(confined(confine_to, extends, "links to"));
    line = line.substr(0, line.find_first_of("\r\n"));
    if (fs::path(line).is_absolute())
      throw std::runtime_error(
          fmt::format("{}: '{}' is an absolute path; name the layout relative to the set", extends.string(), line));
    auto layout = (root / line).lexically_normal();
    if (line.empty() || !fs::is_directory(layout))
      throw std::runtime_error(fmt::format("{}: '{}' is not a layout directory", extends.string(), line));
    if (!within(confine_to, fs::weakly_canonical(layout)))
      throw std::runtime_error(fmt::format("{}: the layout '{}' is outside the templates root {} (--templates-root widens it)",
                                           extends.string(), line, confine_to.string()));
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

bool load_templates_into(const std::string& dir, const std::string& templates_root, queue::campaign_definition& def) {
  try {
    auto set = load_template_set(dir, templates_root);
    def.templates = std::move(set.templates);
    def.partials = std::move(set.partials);
    return true;
  } catch (const std::exception& e) {
    std::cerr << "error: template: " << e.what() << "\n";
    return false;
  }
}

bool template_set_fits(const std::string& dir, const queue::campaign_definition& def) {
  if (def.kind == queue::channel::email && !def.templates.count("text") && !def.templates.count("html")) {
    std::cerr << fmt::format("error: {}: an e-mail template set needs text.mustache or html.mustache\n", dir);
    return false;
  }
  if (def.kind == queue::channel::sms && !def.templates.count("sms")) {
    std::cerr << fmt::format("error: {}: an SMS template set needs sms.mustache\n", dir);
    return false;
  }
  return true;
}

void add_templates_root(CLI::App* cmd, std::string& templates_root) {
  cmd->add_option("--templates-root", templates_root,
                  "Directory the template set and its layout must stay in (default: the set's parent directory)");
}

}  // namespace budstikke::cli
