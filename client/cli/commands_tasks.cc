// Everyday operation: list, get, cancel, watch, wait, download, backends.
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/cli/commands.h"
#include "client/cli/follow.h"
#include "client/cli/inputs.h"
#include "client/cli/output.h"

namespace videotask::cli {
namespace {

absl::Time ToAbslTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

// --- list --------------------------------------------------------------------

struct ListFlags {
  std::vector<std::string> states;
  std::string backend;
  std::string caller;
  std::vector<std::string> labels;
  int limit = 50;
  bool all = false;
};

int RunList(const GlobalOptions& g, const ListFlags& f) {
  v1::ListTasksRequest request;
  for (const std::string& name : f.states) {
    auto state = ParseState(name);
    if (!state) {
      return ReportError(absl::InvalidArgumentError(absl::StrCat(
                             "--state: unknown state \"", name, "\"; one of ", StateNames())),
                         g);
    }
    request.add_states(*state);
  }
  auto labels = ParseLabels(f.labels);
  if (!labels.ok()) return ReportError(labels.status(), g);
  for (const auto& [k, v] : *labels) (*request.mutable_labels())[k] = v;
  request.set_backend(f.backend);
  request.set_caller(f.caller);
  int code = 0;
  auto connection = Connect(g, code);
  if (!connection) return code;

  std::vector<v1::Task> tasks;
  std::string next_token;
  while (true) {
    int remaining = f.all ? 1000 : f.limit - static_cast<int>(tasks.size());
    if (remaining <= 0) break;
    request.set_page_size(std::min(remaining, 1000));
    v1::ListTasksResponse response;
    auto ctx = connection->NewContext();
    absl::Status status = FromGrpc(connection->stub().ListTasks(ctx.get(), request, &response));
    if (!status.ok()) return ReportError(status, g);
    for (const auto& task : response.tasks()) tasks.push_back(task);
    next_token = response.next_page_token();
    if (next_token.empty()) break;
    request.set_page_token(next_token);
  }
  if (g.json) {
    nlohmann::ordered_json out = {{"tasks", nlohmann::ordered_json::array()}, {"next_page_token", next_token}};
    for (const auto& task : tasks) out["tasks"].push_back(ProtoToJson(task));
    PrintJson(out);
    return kExitOk;
  }
  Table table({"ID", "STATE", "PROGRESS", "STUB", "AGE", "DETAIL"});
  absl::Time now = connection->clock().Now();
  for (const auto& task : tasks) {
    std::string detail = TaskErrorText(task);
    if (detail.empty() && task.provider_status() != StateName(task.state())) {
      detail = task.provider_status();
    }
    table.AddRow({task.id(), StateName(task.state()), Percent(task.progress()),
                  task.target_filename_stub(), FormatAge(now - ToAbslTime(task.create_time())),
                  Abbreviate(detail, 60)});
  }
  std::cout << table.Render();
  if (!next_token.empty()) std::cout << "(more tasks: raise --limit or use --all)\n";
  return kExitOk;
}

// --- get -----------------------------------------------------------------------

int RunGet(const GlobalOptions& g, const std::vector<std::string>& ids) {
  int code = 0;
  auto connection = Connect(g, code);
  if (!connection) return code;
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  int worst = kExitOk;
  for (size_t i = 0; i < ids.size(); ++i) {
    v1::GetTaskRequest request;
    request.set_id(ids[i]);
    v1::Task task;
    auto ctx = connection->NewContext();
    absl::Status status = FromGrpc(connection->stub().GetTask(ctx.get(), request, &task));
    if (!status.ok()) {
      worst = std::max(worst, ReportError(status, g));
      continue;
    }
    if (g.json) {
      all.push_back(ProtoToJson(task));
    } else {
      if (i > 0) std::cout << "\n";
      std::cout << DescribeTask(task, connection->clock().Now());
    }
  }
  if (g.json) PrintJson(ids.size() == 1 && all.size() == 1 ? all[0] : all);
  return worst;
}

// --- cancel --------------------------------------------------------------------

int RunCancel(const GlobalOptions& g, const std::vector<std::string>& ids) {
  int code = 0;
  auto connection = Connect(g, code);
  if (!connection) return code;
  return RunForEachId(g, ids, [&](const std::string& id) -> absl::StatusOr<IdOutcome> {
    v1::CancelTaskRequest request;
    request.set_id(id);
    v1::Task task;
    auto ctx = connection->NewContext();
    absl::Status status = FromGrpc(connection->stub().CancelTask(ctx.get(), request, &task));
    if (!status.ok()) return status;
    return IdOutcome{{{"task", ProtoToJson(task)}}, absl::StrCat(id, " ", StateName(task.state()))};
  });
}

// --- watch / wait ------------------------------------------------------------------

int RunWatch(const GlobalOptions& g, const std::vector<std::string>& ids) {
  int code = 0;
  auto connection = Connect(g, code);
  if (!connection) return code;
  auto tasks = WatchTasks(*connection, ids, DefaultProgressStyle(g.json), std::cout);
  if (!tasks.ok()) return ReportError(tasks.status(), g);
  return ExitCodeForTasks(*tasks);
}

int RunWait(const GlobalOptions& g, const std::vector<std::string>& ids) {
  int code = 0;
  auto connection = Connect(g, code);
  if (!connection) return code;
  std::vector<v1::Task> tasks;
  nlohmann::ordered_json out = {{"tasks", nlohmann::ordered_json::array()}};
  for (const std::string& id : ids) {
    auto task = WaitForTask(*connection, id);
    if (!task.ok()) return ReportError(task.status(), g);
    tasks.push_back(*task);
    if (g.json) {
      out["tasks"].push_back(ProtoToJson(*task));
    } else {
      std::string error = TaskErrorText(*task);
      std::cout << id << " " << StateName(task->state())
                << (error.empty() ? "" : absl::StrCat(" ", error)) << "\n";
      std::cout.flush();
    }
  }
  if (g.json) PrintJson(out);
  return ExitCodeForTasks(tasks);
}

// --- download ----------------------------------------------------------------------

struct DownloadFlags {
  std::string id;
  std::string output;
  std::string dir;
};

int RunDownload(const GlobalOptions& g, const DownloadFlags& f) {
  int code = 0;
  auto connection = Connect(g, code);
  if (!connection) return code;
  auto result = DownloadOutput(*connection, f.id, f.output, f.dir);
  if (!result.ok()) return ReportError(result.status(), g);
  if (g.json) {
    PrintJson({{"id", f.id},
               {"file", result->path},
               {"bytes", result->bytes},
               {"reconnects", result->reconnects},
               {"unchanged", result->unchanged}});
  } else {
    std::cout << result->path << " (" << FormatBytes(result->bytes)
              << (result->unchanged ? ", already up to date" : "") << ")\n";
  }
  return kExitOk;
}

// --- backends ----------------------------------------------------------------------

std::string DurationText(const google::protobuf::Duration& d) {
  absl::Duration value = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
  return absl::FormatDuration(value);
}

std::string Usd(double usd) { return absl::StrFormat("$%.2f", usd); }

// Today's spend (UTC) against the backend's daily budget.
void PrintBudget(const v1::BackendInfo& backend) {
  std::cout << "  spent today:         " << Usd(backend.spent_today_usd());
  if (backend.daily_budget_usd() > 0) {
    std::cout << " of " << Usd(backend.daily_budget_usd()) << " daily budget, "
              << Usd(backend.remaining_today_usd()) << " left";
  } else {
    std::cout << " (no daily budget)";
  }
  if (backend.has_budget_reset_time()) {
    std::cout << "; resets "
              << google::protobuf::util::TimeUtil::ToString(backend.budget_reset_time());
  }
  std::cout << "\n";
}

void PrintCallerSpend(const v1::ListBackendsResponse& response) {
  for (const auto& c : response.caller_spend()) {
    std::cout << "caller " << c.caller() << ": spent today " << Usd(c.spent_today_usd());
    if (c.has_remaining_today_usd()) {
      std::cout << ", " << Usd(c.remaining_today_usd()) << " left of the per-caller budget";
    }
    std::cout << "\n";
  }
}

int RunBackends(const GlobalOptions& g) {
  int code = 0;
  auto connection = Connect(g, code);
  if (!connection) return code;
  v1::ListBackendsResponse response;
  auto ctx = connection->NewContext();
  absl::Status status =
      FromGrpc(connection->stub().ListBackends(ctx.get(), v1::ListBackendsRequest(), &response));
  if (!status.ok()) return ReportError(status, g);
  if (g.json) {
    PrintJson(ProtoToJson(response));
    return kExitOk;
  }
  for (const auto& backend : response.backends()) {
    std::cout << backend.name() << (backend.name() == response.default_backend() ? " (default)" : "")
              << "\n";
    std::cout << "  default model:       " << backend.default_model() << "\n";
    std::cout << "  images:              " << absl::StrJoin(backend.image_mime_types(), ", ")
              << ", at most " << FormatBytes(backend.max_image_bytes()) << "\n";
    std::cout << "  concurrency:         " << backend.max_concurrency() << " running at once\n";
    std::cout << "  min submit interval: " << DurationText(backend.min_submit_interval()) << "\n";
    std::cout << "  poll interval:       " << DurationText(backend.poll_interval()) << "\n";
    PrintBudget(backend);
    if (backend.paused()) {
      std::cout << "  paused:              since "
                << google::protobuf::util::TimeUtil::ToString(backend.pause_time()) << " by "
                << backend.paused_by()
                << (backend.pause_reason().empty() ? "" : ": " + backend.pause_reason()) << "\n";
    }
    for (const auto& model : backend.models()) {
      std::vector<std::string> aliases;
      for (const auto& [alias, ratio] : model.ratio_aliases()) aliases.push_back(absl::StrCat(alias, "=", ratio));
      std::sort(aliases.begin(), aliases.end());
      std::cout << "  model " << model.name() << "\n";
      std::cout << "    ratios:    " << absl::StrJoin(model.ratios(), ", ") << " (default "
                << model.default_ratio() << ")\n";
      if (!aliases.empty()) std::cout << "    aliases:   " << absl::StrJoin(aliases, ", ") << "\n";
      std::cout << "    durations: " << absl::StrJoin(model.durations(), ", ") << " s (default "
                << model.default_duration_seconds() << ")\n";
      if (model.usd_per_second() > 0) {
        std::cout << "    price:     " << absl::StrFormat("$%.3f", model.usd_per_second())
                  << " per second (estimated)\n";
      }
      std::cout << "    prompt:    "
                << (model.max_prompt_utf16() == 0
                        ? std::string("not taken")
                        : absl::StrCat("up to ", model.max_prompt_utf16(), " UTF-16 units",
                                       model.prompt_required() ? ", required" : ", optional"))
                << "\n";
      for (const auto& option : model.options()) {
        std::cout << "    option:    " << option.name() << " (" << option.type();
        if (!option.values().empty()) std::cout << ": " << absl::StrJoin(option.values(), ", ");
        if (option.has_min()) std::cout << " " << option.min() << ".." << option.max();
        std::cout << ")" << (option.description().empty() ? "" : " " + option.description())
                  << "\n";
      }
    }
  }
  PrintCallerSpend(response);
  return kExitOk;
}

}  // namespace

void AddTaskCommands(CLI::App& app, std::vector<Command>& commands) {
  auto list_flags = std::make_shared<ListFlags>();
  CLI::App* list = app.add_subcommand("list", "List tasks, newest first");
  list->add_option("-s,--state", list_flags->states,
                   "Only tasks in this state (repeatable): " + StateNames())
      ->allow_extra_args(false);
  list->add_option("--backend", list_flags->backend, "Only tasks of this backend");
  list->add_option("--caller", list_flags->caller,
                   "Only tasks submitted by this caller (a name from the server's token file, or "
                   "\"anonymous\")");
  list->add_option("-l,--label", list_flags->labels, "Only tasks with this label key=value (repeatable)")
      ->allow_extra_args(false);
  list->add_option("-n,--limit", list_flags->limit, "Show at most N tasks")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  list->add_flag("-a,--all", list_flags->all, "Show every matching task (all pages)");
  list->footer(R"(Examples:
  videotask list
  videotask list --state running --state queued
  videotask list --label batch=2024-06 --all
  videotask list --caller team-video --state queued
  videotask --json list --state failed | jq -r '.tasks[].id')");
  commands.push_back({list, [list_flags](const GlobalOptions& g) { return RunList(g, *list_flags); }});

  auto get_ids = std::make_shared<std::vector<std::string>>();
  CLI::App* get = app.add_subcommand("get", "Show tasks in full");
  get->add_option("ID", *get_ids, "Task ids")->required();
  get->footer(R"(Examples:
  videotask get 01J0Z3YV6Q8W3C2M5N7P9R1T4X
  videotask --json get 01J0Z3YV6Q8W3C2M5N7P9R1T4X | jq .state)");
  commands.push_back({get, [get_ids](const GlobalOptions& g) { return RunGet(g, *get_ids); }});

  auto cancel_ids = std::make_shared<std::vector<std::string>>();
  CLI::App* cancel = app.add_subcommand("cancel", "Cancel tasks that have not finished");
  cancel->add_option("ID", *cancel_ids, "Task ids")->required();
  cancel->footer(R"(Examples:
  videotask cancel 01J0Z3YV6Q8W3C2M5N7P9R1T4X
  videotask --json list --state queued | jq -r '.tasks[].id' | xargs videotask cancel)");
  commands.push_back({cancel, [cancel_ids](const GlobalOptions& g) { return RunCancel(g, *cancel_ids); }});

  auto watch_ids = std::make_shared<std::vector<std::string>>();
  CLI::App* watch = app.add_subcommand("watch", "Live progress of tasks until they end");
  watch->add_option("ID", *watch_ids, "Task ids")->required();
  watch->footer(R"(On a terminal each task has one line, redrawn in place; otherwise a line is
printed per change. With --json each update is one JSON object per line.
Exit code 1 when a task failed or was cancelled.

Examples:
  videotask watch 01J0Z3YV6Q8W3C2M5N7P9R1T4X 01J0Z3YV6R0B5D7F9H1K3M5P7R
  videotask --json watch 01J0Z3YV6Q8W3C2M5N7P9R1T4X | jq -c '{state, progress}')");
  commands.push_back({watch, [watch_ids](const GlobalOptions& g) { return RunWatch(g, *watch_ids); }});

  auto wait_ids = std::make_shared<std::vector<std::string>>();
  CLI::App* wait = app.add_subcommand("wait", "Block until tasks end; print their final states");
  wait->add_option("ID", *wait_ids, "Task ids")->required();
  wait->footer(R"(Exit code 0 when every task SUCCEEDED, 1 when one failed or was cancelled.

Examples:
  videotask wait 01J0Z3YV6Q8W3C2M5N7P9R1T4X && videotask download 01J0Z3YV6Q8W3C2M5N7P9R1T4X)");
  commands.push_back({wait, [wait_ids](const GlobalOptions& g) { return RunWait(g, *wait_ids); }});

  auto download_flags = std::make_shared<DownloadFlags>();
  CLI::App* download = app.add_subcommand("download", "Download the video of a finished task");
  download->add_option("ID", download_flags->id, "Task id")->required();
  auto* out_file = download->add_option("-o,--output", download_flags->output,
                                        "File to write (default: <stub>.mp4)");
  download->add_option("-d,--dir", download_flags->dir, "Folder for <stub>.mp4")
      ->check(CLI::ExistingDirectory)
      ->excludes(out_file);
  download->footer(R"(The file is written beside its final name and renamed when complete; a
broken stream is resumed at the byte it reached.

Examples:
  videotask download 01J0Z3YV6Q8W3C2M5N7P9R1T4X
  videotask download 01J0Z3YV6Q8W3C2M5N7P9R1T4X -o clip.mp4)");
  commands.push_back(
      {download, [download_flags](const GlobalOptions& g) { return RunDownload(g, *download_flags); }});

  CLI::App* backends = app.add_subcommand("backends", "Show the server's backends and what they take");
  backends->footer(R"(Examples:
  videotask backends
  videotask --json backends | jq '.backends[].models[].ratios')");
  commands.push_back({backends, [](const GlobalOptions& g) { return RunBackends(g); }});
}

}  // namespace videotask::cli
