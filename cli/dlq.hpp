// `budstikke dlq`: dead letters (recipients recorded `failed`) listed, shown, and requeued into
// their campaign so that an engine sends them again.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace budstikke::cli {

enum class dlq_action { list, show, requeue };

struct dlq_options {
  dlq_action action = dlq_action::list;
  std::optional<std::string> campaign;  // list: every campaign when absent; show, requeue: required
  std::string reason;                   // only dead letters whose reason contains this
  std::vector<std::string> entries;     // show: the one entry; requeue: only these (dead-letter ids)
  std::size_t limit = 100;              // list: at most this many; 0 = all
  bool json = false;
};

int dlq_command(const config& cfg, const dlq_options& opt);

}  // namespace budstikke::cli
