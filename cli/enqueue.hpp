// `budstikke enqueue`: a campaign from a recipient file and a template set (cli/template_set.hpp).
#pragma once

#include <optional>
#include <string>

#include "config/config.hpp"
#include "queue/schema.hpp"

namespace budstikke::cli {

struct enqueue_options {
  std::string campaign;
  std::string template_dir;
  std::string templates_root;  // empty: the template set's parent directory
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

}  // namespace budstikke::cli
