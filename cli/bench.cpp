// `budstikke bench`: the load benchmark (bench/bench.hpp) as a subcommand.
#include <CLI/CLI.hpp>

#include "bench/bench.hpp"
#include "cli/command.hpp"

namespace budstikke::cli {

void add_bench(CLI::App& app, action& chosen) {
  auto o = std::make_shared<bench::bench_options>();
  auto* cmd = app.add_subcommand("bench", "Load benchmark: Redis + SMTP sink + engine on this machine");
  bench::add_bench_options(cmd, *o);
  cmd->callback([&chosen, o] { chosen = [o] { return bench::run_bench(*o); }; });
}

}  // namespace budstikke::cli
