// Retention: deleting old terminal tasks and old output files in small
// batches, DeleteTask, and giving freed database pages back.
#include <unistd.h>

#include <cerrno>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "server/engine/engine.h"

namespace videotask::engine {

absl::Status Engine::RemoveOutputFile(const Task& task) const {
  if (task.output_path.empty() || task.output_removed_time != absl::InfinitePast()) {
    return absl::OkStatus();
  }
  // Only files this server wrote into its own output folder.
  if (!absl::StartsWith(task.output_path, absl::StrCat(options_.output_dir, "/"))) {
    return absl::FailedPreconditionError(
        absl::StrCat("output of task ", task.id, " is not in this server's output folder"));
  }
  if (::unlink(task.output_path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("delete output of task ", task.id));
  }
  return absl::OkStatus();
}

absl::StatusOr<Task> Engine::Delete(const std::string& id, bool delete_output) {
  VT_ASSIGN_OR_RETURN(Task current, store_.Get(id));
  if (!IsTerminal(current.state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", id, " is ", TaskStateName(current.state),
                     "; only SUCCEEDED, FAILED or CANCELLED tasks can be deleted (cancel it first)"));
  }
  // The file first: a failure leaves the task as it was, to try again.
  if (delete_output) VT_RETURN_IF_ERROR(RemoveOutputFile(current));
  VT_ASSIGN_OR_RETURN(Task deleted, store_.Delete(id));
  hub_.PublishDeleted(id);
  return deleted;
}

absl::Status Engine::RemoveExpiredOutputs(absl::Time before, RetentionPass& pass) {
  while (!Stopping()) {
    VT_ASSIGN_OR_RETURN(std::vector<Task> tasks,
                        store_.ListKeptOutputs(before, options_.retention_batch));
    int64_t progress = 0;
    for (Task& task : tasks) {
      // The file goes before the mark: a crash in between finds the task
      // again next time, never a file no task points at.
      absl::Status removed = RemoveOutputFile(task);
      if (!removed.ok()) {
        VT_LOG_WARN("output retention: {}", removed.ToString());
        continue;
      }
      task.output_removed_time = clock_.Now();
      // ABORTED: another process marked it first.
      if (Commit(std::move(task)).ok()) ++pass.outputs_removed;
      ++progress;
    }
    if (static_cast<int>(tasks.size()) < options_.retention_batch || progress == 0) break;
    std::this_thread::yield();
  }
  return absl::OkStatus();
}

absl::Status Engine::DeleteExpiredTasks(absl::Time before, RetentionPass& pass) {
  while (!Stopping()) {
    // One bounded transaction per batch: submits queued meanwhile go into
    // the next group commit instead of waiting for the whole pass.
    VT_ASSIGN_OR_RETURN(std::vector<Task> deleted,
                        store_.DeleteEnded(before, options_.retention_batch));
    for (const Task& task : deleted) hub_.PublishDeleted(task.id);
    pass.tasks_deleted += static_cast<int64_t>(deleted.size());
    if (static_cast<int>(deleted.size()) < options_.retention_batch) break;
    std::this_thread::yield();
  }
  return absl::OkStatus();
}

absl::StatusOr<RetentionPass> Engine::RunRetention() {
  const absl::Time now = clock_.Now();
  RetentionPass pass;
  if (options_.output_retention > absl::ZeroDuration()) {
    VT_RETURN_IF_ERROR(RemoveExpiredOutputs(now - options_.output_retention, pass));
  }
  if (options_.retention > absl::ZeroDuration()) {
    VT_RETURN_IF_ERROR(DeleteExpiredTasks(now - options_.retention, pass));
  }
  if (pass.tasks_deleted > 0 || pass.outputs_removed > 0 || options_.reclaim_pages > 0) {
    VT_ASSIGN_OR_RETURN(pass.pages_reclaimed, store_.ReclaimSpace(options_.reclaim_pages));
  }
  if (pass.tasks_deleted > 0 || pass.outputs_removed > 0) {
    VT_LOG_INFO("retention: {} tasks deleted, {} output files removed, {} database pages freed",
                pass.tasks_deleted, pass.outputs_removed, pass.pages_reclaimed);
  }
  return pass;
}

void Engine::MaybeStartRetention(absl::Time now) {
  {
    absl::MutexLock lock(&mu_);
    if (retention_running_ || now < next_retention_ || stopping_) return;
    retention_running_ = true;
    next_retention_ = now + options_.retention_interval;
    ++steps_running_;
  }
  workers_.Schedule([this] {
    absl::StatusOr<RetentionPass> pass = RunRetention();
    if (!pass.ok()) VT_LOG_WARN("retention pass failed: {}", pass.status().ToString());
    absl::MutexLock lock(&mu_);
    retention_running_ = false;
    --steps_running_;
  });
}

}  // namespace videotask::engine
