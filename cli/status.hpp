// `budstikke status`: campaigns and their counts, as a table or one JSON object per line
// (`--watch` is cli/watch.hpp).
#pragma once

#include <optional>
#include <string>

#include "config/config.hpp"

namespace budstikke::cli {

struct status_options {
  std::optional<std::string> campaign;
  bool json = false;
};

int status_command(const config& cfg, const status_options& opt);

}  // namespace budstikke::cli
