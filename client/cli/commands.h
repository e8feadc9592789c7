// The subcommands of `videotask`. Each Add*Commands registers its
// subcommands (flags, help, examples) on the app and appends what to run when
// one of them was chosen.
#ifndef VIDEOTASK_CLIENT_CLI_COMMANDS_H_
#define VIDEOTASK_CLIENT_CLI_COMMANDS_H_

#include <functional>
#include <vector>

#include <CLI/CLI.hpp>

#include "client/cli/connection.h"

namespace videotask::cli {

struct Command {
  CLI::App* app;  // owned by the parent app
  std::function<int(const GlobalOptions&)> run;  // returns the exit code
};

// submit, submit-dir.
void AddSubmitCommands(CLI::App& app, std::vector<Command>& commands);
// list, get, cancel, watch, wait, download, backends.
void AddTaskCommands(CLI::App& app, std::vector<Command>& commands);
// retry, pause, resume.
void AddOperatorCommands(CLI::App& app, std::vector<Command>& commands);
// delete.
void AddDeleteCommand(CLI::App& app, std::vector<Command>& commands);

}  // namespace videotask::cli

#endif  // VIDEOTASK_CLIENT_CLI_COMMANDS_H_
