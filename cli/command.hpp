// What every subcommand file shares: exit codes, the options that find the configuration, and
// the way a subcommand adds itself to the command line. One file per subcommand (cli/*.cpp)
// declares its options and, when it is the one given, sets the action main runs.
#pragma once

#include <functional>
#include <string>

#include "config/config.hpp"

namespace CLI {
class App;
}

namespace budstikke::cli {

// 0 ok, 1 runtime failure, 2 usage, configuration or input error.
inline constexpr int exit_ok = 0;
inline constexpr int exit_runtime = 1;
inline constexpr int exit_usage = 2;
inline constexpr int exit_gave_up_waiting = 3;  // run --until-idle --max-wait

// The chosen subcommand, run by main once the command line is parsed; returns the exit code.
// It may throw config_error (exit 2) or another exception (exit 1): main says what, in one line.
using action = std::function<int()>;

// --config, --redis, --prefix: where a command finds its configuration and Redis.
struct common_options {
  std::string config_file;
  std::string redis_url;
  std::string key_prefix;
};
void add_common(CLI::App* cmd, common_options& o);
config resolve_config(const common_options& o);

// Each adds its subcommand(s) to `app`, with options bound to state the action keeps.
void add_run(CLI::App& app, action& chosen);           // cli/run.cpp
void add_enqueue(CLI::App& app, action& chosen);       // cli/enqueue.cpp
void add_render(CLI::App& app, action& chosen);        // cli/preview.cpp
void add_status(CLI::App& app, action& chosen);        // cli/status.cpp (--watch: cli/watch.cpp)
void add_control(CLI::App& app, action& chosen);       // cli/control.cpp: pause, resume, cancel
void add_dlq(CLI::App& app, action& chosen);           // cli/dlq.cpp
void add_sink(CLI::App& app, action& chosen);          // cli/sink.cpp
void add_send(CLI::App& app, action& chosen);          // cli/send.cpp
void add_consent(CLI::App& app, action& chosen);       // cli/consent.cpp
void add_suppress(CLI::App& app, action& chosen);      // cli/suppress.cpp
void add_bench(CLI::App& app, action& chosen);         // cli/bench.cpp

}  // namespace budstikke::cli
