// Reuse of identical work. The store inserts a task submitted with reuse
// that is identical to one SUCCEEDED (output kept) or on its way as a
// QUEUED follower of it (reused_from; never claimed). Here followers are
// finished: they take the output of their task (a hard link, or a copy)
// and become SUCCEEDED without a provider call, or, when that task ended
// without an output, the first goes back to the queue to be sent itself
// and the others follow it. Followers are resolved when their task ends
// (Commit), when the API finishes a submit (FinishReuse), and by the
// recovery scans (a crash between the two, another process's task).
#include <unistd.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "server/engine/engine.h"
#include "server/engine/transitions.h"

namespace videotask::engine {
namespace {

// Followers resolved per task per pass; the recovery scans take the rest.
constexpr int kFollowerBatch = 1000;

bool HasKeptOutput(const Task& task) {
  return task.state == TaskState::kSucceeded && !task.output_path.empty() &&
         task.output_removed_time == absl::InfinitePast();
}

}  // namespace

absl::StatusOr<Task> Engine::FinishReuse(const Task& follower, const Task* source) {
  if (follower.state != TaskState::kQueued || follower.reused_from.empty()) return follower;
  if (source != nullptr) return ResolveFollower(follower, source);
  absl::StatusOr<Task> current = store_.Get(follower.reused_from);
  if (absl::IsNotFound(current.status())) return ResolveFollower(follower, nullptr);
  if (!current.ok()) return current.status();
  return ResolveFollower(follower, &*current);
}

absl::StatusOr<Task> Engine::ResolveFollower(const Task& follower, const Task* source) {
  if (source != nullptr && !IsTerminal(source->state)) return follower;  // still on its way
  if (source != nullptr && HasKeptOutput(*source)) {
    absl::StatusOr<Task> done = TakeOutput(follower, *source);
    if (done.ok() || absl::IsAborted(done.status())) return done;
    VT_LOG_WARN("task {} cannot reuse the output of {}: {}; it is sent itself", follower.id,
                source->id, done.status().ToString());
  }
  absl::StatusOr<Task> released = Commit(ToUnfollowed(follower));
  if (released.ok()) {
    absl::MutexLock lock(&mu_);
    auto it = backend_state_.find(released->spec.backend);
    if (it != backend_state_.end()) it->second.maybe_queued = true;
    kicked_ = true;
  }
  return released;
}

absl::StatusOr<Task> Engine::TakeOutput(const Task& follower, const Task& source) {
  OutputInfo from{source.output_path, source.output_size_bytes, source.output_sha256};
  VT_ASSIGN_OR_RETURN(OutputInfo info,
                      output_writer_.Reuse(from, follower.target_filename_stub, follower.id));
  // The task that was paid for, when `source` reused it in turn.
  const std::string& original = source.reused_from.empty() ? source.id : source.reused_from;
  absl::StatusOr<Task> stored = Commit(OnReused(follower, original, info, clock_.Now()));
  if (stored.ok()) {
    absl::MutexLock lock(&mu_);
    --queued_estimate_;
    CallerLeftQueue(follower.caller);
    return stored;
  }
  // Cancelled meanwhile, or finished by another path (into the same file).
  absl::StatusOr<Task> current = store_.Get(follower.id);
  if (!current.ok() || current->output_path != info.path) ::unlink(info.path.c_str());
  if (current.ok() && absl::IsAborted(stored.status())) return current;
  return stored.status();
}

void Engine::ResolveFollowersOf(const Task& task) {
  absl::StatusOr<std::vector<Task>> followers = store_.ListFollowers(task.id, kFollowerBatch);
  if (!followers.ok()) {
    VT_LOG_WARN("followers of task {} not resolved: {}", task.id, followers.status().ToString());
    return;
  }
  ResolveAll(*std::move(followers), task.id, &task);
}

void Engine::ResolveAll(std::vector<Task> followers, const std::string& of, const Task* source) {
  // Without an output to take, the oldest follower is sent and the others
  // follow it: still one provider task for all.
  std::string leader;
  for (Task& follower : followers) {
    if (!leader.empty()) {
      (void)Commit(ToFollowing(std::move(follower), leader));
      continue;
    }
    absl::StatusOr<Task> done = ResolveFollower(follower, source);
    if (done.ok() && done->state == TaskState::kQueued && done->reused_from.empty()) {
      leader = done->id;
      VT_LOG_INFO("task {} ended without an output to reuse; its follower {} is sent", of, leader);
    }
  }
}

void Engine::ResolveWaitingFollowers() {
  absl::StatusOr<std::vector<Task>> followers = store_.ListFollowers("", kFollowerBatch);
  if (!followers.ok() || followers->empty()) return;
  std::map<std::string, std::vector<Task>> by_task;
  for (Task& f : *followers) by_task[f.reused_from].push_back(std::move(f));
  for (auto& [id, waiting] : by_task) {
    absl::StatusOr<Task> source = store_.Get(id);
    if (source.ok() && !IsTerminal(source->state)) continue;  // still on its way
    if (!source.ok() && !absl::IsNotFound(source.status())) continue;
    ResolveAll(std::move(waiting), id, source.ok() ? &*source : nullptr);
  }
}

}  // namespace videotask::engine
