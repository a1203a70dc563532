// `budstikke status --watch`: a live view of campaigns — progress bar, rate, ETA and the counts
// by state — redrawn in place on a terminal, or one plain key=value line per campaign and
// interval when stdout is not a terminal (logs, pipes, CI).
//
// Without --campaign it shows every campaign in the engine's registry (active or paused); one
// that leaves the registry (done, cancelled) is shown once more with its final counts. It runs
// until Ctrl-C (exit 0), or with `until_idle` until no shown campaign is active.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "config/config.hpp"

namespace budstikke::cli {

struct watch_options {
  std::optional<std::string> campaign;
  std::chrono::milliseconds interval{1000};
  bool until_idle = false;
};

int watch_command(const config& cfg, const watch_options& opt);

}  // namespace budstikke::cli
