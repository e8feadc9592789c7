// Operating the queue: retry a failed or cancelled task, pause and resume a
// backend.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "client/cli/commands.h"
#include "client/cli/output.h"

namespace videotask::cli {
namespace {

// --- retry --------------------------------------------------------------------

struct RetryFlags {
  std::vector<std::string> ids;
  bool confirm_possible_duplicate = false;
  std::string adopt;
};

int RunRetry(const GlobalOptions& g, const RetryFlags& f) {
  if (!f.adopt.empty() && f.ids.size() != 1) {
    return ReportError(absl::InvalidArgumentError("--adopt takes exactly one task id"), g);
  }
  int code = 0;
  auto connection = Connect(g, code);
  if (!connection) return code;
  return RunForEachId(g, f.ids, [&](const std::string& id) -> absl::StatusOr<IdOutcome> {
    v1::RetryTaskRequest request;
    request.set_id(id);
    request.set_confirm_possible_duplicate(f.confirm_possible_duplicate);
    request.set_adopt_provider_task_id(f.adopt);
    v1::Task task;
    auto ctx = connection->NewContext();
    absl::Status status = FromGrpc(connection->stub().RetryTask(ctx.get(), request, &task));
    if (!status.ok()) return status;
    return IdOutcome{{{"task", ProtoToJson(task)}},
                     absl::StrCat(id, " ", StateName(task.state()),
                                  task.provider_task_id().empty() ? "" : " ",
                                  task.provider_task_id(), " (try ", task.attempts_size(), ")")};
  });
}

// --- pause / resume -----------------------------------------------------------

void PrintBackendState(const v1::BackendInfo& info) {
  if (!info.paused()) {
    std::cout << info.name() << " running\n";
    return;
  }
  std::cout << info.name() << " paused since "
            << google::protobuf::util::TimeUtil::ToString(info.pause_time()) << " by "
            << info.paused_by() << (info.pause_reason().empty() ? "" : ": " + info.pause_reason())
            << "\n";
}

int RunPause(const GlobalOptions& g, const std::string& name, const std::string& reason,
             bool pause) {
  int code = 0;
  auto connection = Connect(g, code);
  if (!connection) return code;
  v1::BackendInfo info;
  auto ctx = connection->NewContext();
  absl::Status status;
  if (pause) {
    v1::PauseBackendRequest request;
    request.set_name(name);
    request.set_reason(reason);
    status = FromGrpc(connection->stub().PauseBackend(ctx.get(), request, &info));
  } else {
    v1::ResumeBackendRequest request;
    request.set_name(name);
    status = FromGrpc(connection->stub().ResumeBackend(ctx.get(), request, &info));
  }
  if (!status.ok()) return ReportError(status, g);
  if (g.json) {
    PrintJson(ProtoToJson(info));
  } else {
    PrintBackendState(info);
  }
  return kExitOk;
}

}  // namespace

void AddOperatorCommands(CLI::App& app, std::vector<Command>& commands) {
  auto retry_flags = std::make_shared<RetryFlags>();
  CLI::App* retry = app.add_subcommand(
      "retry", "Put FAILED or CANCELLED tasks back in the queue under the same ids");
  retry->add_option("ID", retry_flags->ids, "Task ids")->required();
  retry->add_flag("--confirm-possible-duplicate", retry_flags->confirm_possible_duplicate,
                  "For a task FAILED with SUBMISSION_AMBIGUOUS: you checked the provider and "
                  "want it created again (it may be paid twice)");
  retry->add_option("--adopt", retry_flags->adopt,
                    "Follow this provider task (found at the provider) instead of creating a "
                    "new one; one task id only");
  retry->footer(R"(Examples:
  videotask retry 01J0Z3YV6Q8W3C2M5N7P9R1T4X
  videotask retry 01J0Z3YV6Q8W3C2M5N7P9R1T4X --adopt 6f1c2d9e-provider-task-id
  videotask --json list --state failed | jq -r '.tasks[].id' | xargs videotask retry)");
  commands.push_back(
      {retry, [retry_flags](const GlobalOptions& g) { return RunRetry(g, *retry_flags); }});

  auto pause_name = std::make_shared<std::string>();
  auto pause_reason = std::make_shared<std::string>();
  CLI::App* pause = app.add_subcommand(
      "pause", "Hold a backend: tasks still queue, none is sent to the provider");
  pause->add_option("BACKEND", *pause_name, "Backend name")->required();
  pause->add_option("--reason", *pause_reason, "Why, shown to other operators");
  pause->footer(R"(Tasks already at the provider are still followed and downloaded. The pause
holds for every replica and across restarts until `videotask resume`.
Example:
  videotask pause runway --reason "provider outage, INC-42")");
  commands.push_back({pause, [pause_name, pause_reason](const GlobalOptions& g) {
                        return RunPause(g, *pause_name, *pause_reason, true);
                      }});

  auto resume_name = std::make_shared<std::string>();
  CLI::App* resume = app.add_subcommand("resume", "Lift a backend's pause");
  resume->add_option("BACKEND", *resume_name, "Backend name")->required();
  resume->footer(R"(Example:
  videotask resume runway)");
  commands.push_back({resume, [resume_name](const GlobalOptions& g) {
                        return RunPause(g, *resume_name, "", false);
                      }});
}

}  // namespace videotask::cli
