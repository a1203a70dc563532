// The engine process: `workers` shards on their own threads, signal handling, the final report.
#pragma once

#include <string>

#include "config/config.hpp"

namespace budstikke::cli {

// Runs until SIGTERM/SIGINT (graceful: in-flight work finishes and is recorded within
// engine.shutdown_grace_ms; a second signal exits at once — unrecorded messages stay pending in
// Redis and are read again on the next start), or, with `until_idle`, until no campaign has work.
// Prints a one-line report; with `report_file`, also writes it there as one JSON object with
// latency quantiles (for `budstikke bench`). Returns the process exit code.
int run_engine(const config& cfg, bool until_idle, const std::string& report_file = {});

}  // namespace budstikke::cli
