// videotask: the command-line client of the videotask service (gRPC only).
#include <iostream>
#include <vector>

#include <CLI/CLI.hpp>

#include "client/cli/commands.h"
#include "client/cli/connection.h"
#include "common/clock.h"
#include "videotask/version.h"

int main(int argc, char** argv) {
  using videotask::cli::Command;
  using videotask::cli::GlobalOptions;

  videotask::SystemClock clock;
  GlobalOptions options;
  options.clock = &clock;
  CLI::App app("videotask: turn still images into short videos with a videotask server.",
               "videotask");
  app.require_subcommand(1);
  app.fallthrough();
  app.set_help_all_flag("--help-all", "Show the help of every command");
  app.set_version_flag("--version", "videotask " VIDEOTASK_VERSION);
  app.add_option("--server", options.server, "Server address host:port")
      ->envname("VIDEOTASK_SERVER")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_flag("--json", options.json, "Machine-readable JSON output");
  app.add_flag("--tls", options.tls, "Use TLS (system roots unless --tls-ca)");
  app.add_option("--tls-ca", options.tls_ca_file, "PEM file of the roots to trust (implies --tls)")
      ->envname("VIDEOTASK_TLS_CA");
  app.add_option("--token", options.token, "Bearer token sent with every call")
      ->envname("VIDEOTASK_TOKEN");
  app.add_option("--rpc-timeout", options.rpc_timeout_seconds, "Seconds allowed for one call")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.footer(R"(Exit codes: 0 success, 1 a task failed or was cancelled, 2 usage or validation
error, 3 server unreachable or unavailable.

Examples:
  videotask submit-dir video_queue --max-videos 3 --prompt "slow zoom in, cinematic lighting" --wait --output out/
  videotask list --state running
  videotask pause runway --reason "provider outage"; videotask resume runway
  videotask --server videotask.internal:50051 watch 01J0Z3YV6Q8W3C2M5N7P9R1T4X
Run `videotask COMMAND --help` for a command's options and examples.)");

  std::vector<Command> commands;
  videotask::cli::AddSubmitCommands(app, commands);
  videotask::cli::AddTaskCommands(app, commands);
  videotask::cli::AddOperatorCommands(app, commands);
  videotask::cli::AddDeleteCommand(app, commands);
  for (const Command& command : commands) command.app->fallthrough();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? videotask::cli::kExitOk : videotask::cli::kExitUsage;
  }
  for (const Command& command : commands) {
    if (command.app->parsed()) return command.run(options);
  }
  std::cerr << app.help();
  return videotask::cli::kExitUsage;
}
