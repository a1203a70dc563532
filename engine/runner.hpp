// The engine process: `workers` shards on their own threads, signal handling, the final report.
#pragma once

#include "engine/config.hpp"

namespace budstikke::engine {

// Runs until SIGTERM/SIGINT (graceful: in-flight work finishes and is recorded within
// engine.shutdown_grace_ms; a second signal exits at once — unrecorded messages stay pending in
// Redis and are read again on the next start), or, with `until_idle`, until no campaign has work.
// Prints a one-line report. Returns the process exit code.
int run_engine(const config& cfg, bool until_idle);

}  // namespace budstikke::engine
