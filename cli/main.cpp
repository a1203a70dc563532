// budstikke <command>: every subcommand adds itself (cli/command.hpp); exceptions stop here, as
// one clear message and exit code 2 (usage, configuration, input) or 1 (runtime).
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "config/load.hpp"
#include "queue/redis.hpp"
#include "support/log.hpp"

namespace budstikke::cli {

void add_common(CLI::App* cmd, common_options& o) {
  cmd->add_option("--config", o.config_file, "YAML configuration file")->check(CLI::ExistingFile);
  cmd->add_option("--redis", o.redis_url, "Redis URL, redis[s]://[[user]:password@]host[:port][/db] (overrides the config and BUDSTIKKE_REDIS)");
  cmd->add_option("--prefix", o.key_prefix, "Redis key prefix (default budstikke:)");
}

config resolve_config(const common_options& o) {
  auto cfg = o.config_file.empty() ? default_config() : load_config(o.config_file);
  if (!o.redis_url.empty()) set_redis_url(cfg, o.redis_url, "--redis");
  if (!o.key_prefix.empty()) cfg.key_prefix = o.key_prefix;
  check_redis_tls(cfg);
  return cfg;
}

}  // namespace budstikke::cli

int main(int argc, char** argv) {
  using namespace budstikke;
  CLI::App app{"budstikke: bulk e-mail and SMS dispatch for member organisations"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "budstikke 0.1.0");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));

  cli::action chosen;
  cli::add_run(app, chosen);
  cli::add_enqueue(app, chosen);
  cli::add_render(app, chosen);
  cli::add_status(app, chosen);
  cli::add_control(app, chosen);
  cli::add_dlq(app, chosen);
  cli::add_sink(app, chosen);
  cli::add_send(app, chosen);
  cli::add_consent(app, chosen);
  cli::add_suppress(app, chosen);
  cli::add_bench(app, chosen);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? cli::exit_ok : cli::exit_usage;
  }
  log::set_min_level(log_level == "debug" ? log::level::debug
                     : log_level == "warn" ? log::level::warn
                     : log_level == "error" ? log::level::error
                                            : log::level::info);
  if (!chosen) return cli::exit_usage;
  try {
    return chosen();
  } catch (const config_error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return cli::exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return cli::exit_runtime;
  }
}
