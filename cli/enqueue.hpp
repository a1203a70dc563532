// `budstikke enqueue`: a campaign from a recipient file and a template set, and the template
// sets themselves (files, partials, shared layouts).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "queue/schema.hpp"

namespace budstikke::cli {

struct enqueue_options {
  std::string campaign;
  std::string template_dir;
  std::string recipients_file;
  std::string channel = "email";
  std::string category = "newsletter";
  std::string tenant = "default";
  int priority = 5;
  std::string from;
  std::string from_name;
  bool skip_invalid = false;  // enqueue the valid lines and report the rest, instead of refusing
  std::optional<int> sms_max_segments;  // overrides sms.max_segments for this campaign
  bool dry_run = false;               // render the first dry_run_count recipients instead (cli/preview.hpp)
  std::size_t dry_run_count = 10;
};

int enqueue_command(const config& cfg, const enqueue_options& opt);

// Template sets: subject/text/html/sms.mustache; every other *.mustache file in the directory or
// in its partials/ subdirectory is a partial named after the file. A file `extends` names (on its
// first line, relative to the set) a shared layout directory whose *.mustache files, and those in
// its partials/, are partials too; the set's own files win over the layout's of the same name.
// Every partial is copied into the campaign, so the campaign no longer depends on the files.
struct template_set_files {
  std::map<std::string, std::string, std::less<>> templates;
  std::map<std::string, std::string, std::less<>> partials;
};
// Reads and compiles every template of the set; throws std::runtime_error naming file, line and
// column of the first template that does not compile, or the file using a partial that is missing.
template_set_files load_template_set(const std::string& dir);
// Loads the set into the campaign's templates and partials; on an error prints
// "error: template: ..." to stderr and returns false (the command exits with exit_usage).
bool load_templates_into(const std::string& dir, queue::campaign_definition& def);

}  // namespace budstikke::cli
