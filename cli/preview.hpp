// Looking at messages before sending them: `budstikke render` (one message from a template set
// and one recipient's data) and `budstikke enqueue --dry-run` (the first recipients of a file,
// and which template variables their data lacks). Neither touches Redis.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "queue/schema.hpp"

namespace budstikke::cli {

struct render_options {
  std::string template_dir;
  std::string templates_root;  // empty: the template set's parent directory
  // An inline JSON object ({"to":..., "id":..., other fields}) or a recipient file (JSON Lines
  // or CSV), whose first recipient is rendered.
  std::string data;
  std::string channel = "email";
  std::string category = "newsletter";
  std::string campaign = "preview";
  std::string from = "avsender@budstikke.invalid";
  std::string from_name;
  std::optional<int> sms_max_segments;
};

// Prints the rendered message: the complete MIME message for e-mail; for SMS the text, its
// encoding, segments and what normalisation changed. Exit code as for every command.
int render_command(const config& cfg, const render_options& opt);

// Renders the first `count` recipients of `recipients_file` with `def` (as `enqueue` built it),
// prints the first message and, per variable the templates use but the data lacks, how many of
// those recipients lack it.
int dry_run_enqueue(const config& cfg, const queue::campaign_definition& def, const std::string& recipients_file,
                    std::size_t count);

}  // namespace budstikke::cli
