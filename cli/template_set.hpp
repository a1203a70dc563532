// Template sets read from files, for `enqueue`, `render` and `send`: the files, partials and
// shared layouts, confined to a templates root.
#pragma once

#include <map>
#include <string>

#include "queue/schema.hpp"

namespace CLI {
class App;
}

namespace budstikke::cli {

// Template sets: subject/text/html/sms.mustache; every other *.mustache file in the directory or
// in its partials/ subdirectory is a partial named after the file. A file `extends` names (on its
// first line, relative to the set) a shared layout directory whose *.mustache files, and those in
// its partials/, are partials too; the set's own files win over the layout's of the same name.
// Every partial is copied into the campaign, so the campaign no longer depends on the files.
//
// A set and its layout are confined to a templates root (`templates_root`, or the set's parent
// directory when empty): `extends` names no absolute path and does not climb out of the root, and
// a file that is a symlink must resolve to a file inside the root.
struct template_set_files {
  std::map<std::string, std::string, std::less<>> templates;
  std::map<std::string, std::string, std::less<>> partials;
};
// Reads and compiles every template of the set; throws std::runtime_error naming file, line and
// column of the first template that does not compile, the file using a partial that is missing,
// or the file that breaks the templates root.
template_set_files load_template_set(const std::string& dir, const std::string& templates_root = "");
// Loads the set into the campaign's templates and partials; on an error prints
// "error: template: ..." to stderr and returns false (the command exits with exit_usage).
bool load_templates_into(const std::string& dir, const std::string& templates_root, queue::campaign_definition& def);
// Whether the loaded set has what a message of def.kind needs (e-mail: text.mustache or
// html.mustache; SMS: sms.mustache); if not, prints "error: DIR: ..." and returns false.
bool template_set_fits(const std::string& dir, const queue::campaign_definition& def);
// --templates-root DIR, for the commands that load a template set.
void add_templates_root(CLI::App* cmd, std::string& templates_root);

}  // namespace budstikke::cli
