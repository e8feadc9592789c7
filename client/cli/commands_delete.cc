// delete: removes finished tasks (and, when asked, their output files).
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/cli/commands.h"
#include "client/cli/output.h"

namespace videotask::cli {
namespace {

struct DeleteFlags {
  std::vector<std::string> ids;
  bool delete_output = false;
};

int RunDelete(const GlobalOptions& g, const DeleteFlags& flags) {
  int code = 0;
  auto connection = Connect(g, code);
  if (!connection) return code;
  return RunForEachId(g, flags.ids, [&](const std::string& id) -> absl::StatusOr<IdOutcome> {
    v1::DeleteTaskRequest request;
    request.set_id(id);
    request.set_delete_output(flags.delete_output);
    google::protobuf::Empty empty;
    auto ctx = connection->NewContext();
    absl::Status status = FromGrpc(connection->stub().DeleteTask(ctx.get(), request, &empty));
    if (!status.ok()) return status;
    return IdOutcome{{{"deleted", true}},
                     absl::StrCat(id, " deleted",
                                  flags.delete_output ? " (with its output file)" : "")};
  });
}

}  // namespace

void AddDeleteCommand(CLI::App& app, std::vector<Command>& commands) {
  auto flags = std::make_shared<DeleteFlags>();
  CLI::App* del = app.add_subcommand("delete", "Delete finished tasks");
  del->add_option("ID", flags->ids, "Task ids")->required();
  del->add_flag("--delete-output", flags->delete_output,
                "Also delete each task's output file on the server");
  del->footer(R"(Only SUCCEEDED, FAILED or CANCELLED tasks can be deleted (cancel others first).
The task record and its image go; the output file stays unless --delete-output.

Examples:
  videotask delete 01J0Z3YV6Q8W3C2M5N7P9R1T4X
  videotask delete --delete-output 01J0Z3YV6Q8W3C2M5N7P9R1T4X
  videotask --json list --state failed | jq -r '.tasks[].id' | xargs videotask delete)");
  commands.push_back({del, [flags](const GlobalOptions& g) { return RunDelete(g, *flags); }});
}

}  // namespace videotask::cli
