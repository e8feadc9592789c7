// The subcommands of `videotask`. Each Add*Commands registers its
// subcommands (flags, help, examples) on the app and appends what to run when
// one of them was chosen.
#ifndef VIDEOTASK_CLIENT_CLI_COMMANDS_H_
#define VIDEOTASK_CLIENT_CLI_COMMANDS_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
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

// Prints `value` as indented JSON (invalid UTF-8 replaced).
void PrintJson(const nlohmann::ordered_json& value);

// Opens the connection, or reports why not and sets `code`: nullptr then.
std::unique_ptr<Connection> Connect(const GlobalOptions& g, int& code);

// What one call for one task id gave: the fields of its JSON result beside
// "id" (e.g. {"task": ...}) and its line of text.
struct IdOutcome {
  nlohmann::ordered_json json;
  std::string line;
};

// Runs `call` for each id in turn. An error is reported on stderr as it
// comes; with --json every result ({"id", ...} or {"id", "error"}) goes out
// in one {"results": [...]} object, else each success prints its line.
// Returns the worst exit code.
int RunForEachId(const GlobalOptions& g, const std::vector<std::string>& ids,
                 const std::function<absl::StatusOr<IdOutcome>(const std::string& id)>& call);

}  // namespace videotask::cli

#endif  // VIDEOTASK_CLIENT_CLI_COMMANDS_H_
