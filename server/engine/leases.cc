// Leases and recovery: what this process holds is leased in the store and
// renewed; on start it resumes what a previous process left, and it takes
// over the tasks of a process sharing the store whose leases expired.
// RUNNING tasks are polled again, never re-created; SUBMITTING ones may
// exist at the provider and fail as SUBMISSION_AMBIGUOUS.
#include "server/engine/engine.h"

#include <utility>

#include "common/log.h"
#include "common/status_macros.h"
#include "server/engine/transitions.h"

namespace videotask::engine {

absl::Status Engine::Recover() { return Scan(/*initial=*/true); }

absl::Status Engine::RecoverOrphans() { return Scan(/*initial=*/false); }

void Engine::LeaseWorkDue(absl::Time now, bool& renew, bool& scan) {
  if (now >= next_orphan_scan_) {
    scan = next_orphan_scan_ != absl::InfinitePast();
    next_orphan_scan_ = now + options_.lease_duration / 2;
  }
  if (now >= next_lease_renewal_) {
    renew = next_lease_renewal_ != absl::InfinitePast();
    next_lease_renewal_ = now + options_.lease_duration / 3;
  }
}

void Engine::RenewLeases(absl::Time now) {
  absl::Status renewed = store_.RenewLeases(options_.owner, now + options_.lease_duration);
  if (!renewed.ok()) VT_LOG_WARN("lease renewal failed: {}", renewed.ToString());
}

absl::Status Engine::Scan(bool initial) {
  absl::Time now = clock_.Now();
  VT_ASSIGN_OR_RETURN(std::vector<Task> tasks, store_.ListRecoverable(options_.owner, now));
  int resumed = 0, ambiguous = 0, cancels = 0;
  for (Task& task : tasks) {
    switch (ResumeTask(std::move(task), initial, now)) {
      case Resumed::kSkipped:
        break;
      case Resumed::kResumed:
        ++resumed;
        break;
      case Resumed::kAmbiguous:
        ++ambiguous;
        break;
      case Resumed::kCancelPending:
        ++cancels;
        break;
    }
  }
  ResolveWaitingFollowers();
  if (!initial && resumed + ambiguous > 0) observer().OnLeaseTakeover(resumed + ambiguous);
  if (resumed + ambiguous + cancels > 0) {
    VT_LOG_INFO("{}: {} task(s) resumed, {} marked {}, {} provider cancel(s) pending",
                initial ? "recovery" : "lease takeover", resumed,
                ambiguous, kErrSubmissionAmbiguous, cancels);
  }
  return absl::OkStatus();
}

Engine::Resumed Engine::ResumeTask(Task task, bool initial, absl::Time now) {
  {
    absl::MutexLock lock(&mu_);
    if (active_.contains(task.id)) return Resumed::kSkipped;  // ours, in hand
  }
  if (!initial && task.lease_owner == options_.owner) return Resumed::kSkipped;
  if (task.state == TaskState::kSubmitting) {
    // The create may have reached the provider before the process died.
    observer().OnAmbiguousCreate(task.spec.backend);
    Fail(std::move(task), InterruptedCreateError());
    return Resumed::kAmbiguous;
  }
  if (task.state == TaskState::kCancelled) {
    if (!initial) return Resumed::kSkipped;
    ScheduleStep(task.id, Step::kProviderCancel, now);
    return Resumed::kCancelPending;
  }
  const EngineBackend* b = FindBackend(task.spec.backend);
  if (b == nullptr) {
    VT_LOG_WARN("task {} is {} on backend {}, which is not enabled; it waits", task.id,
                TaskStateName(task.state), task.spec.backend);
    return Resumed::kSkipped;
  }
  absl::StatusOr<Task> stored =
      Commit(ToLeased(std::move(task), options_.owner, now + options_.lease_duration));
  if (!stored.ok()) return Resumed::kSkipped;  // taken or changed meanwhile
  Track(*stored);
  if (stored->state == TaskState::kDownloading) {
    ScheduleStep(stored->id, Step::kFetch, now);
  } else {
    // The previous holder may have polled it a moment ago.
    ScheduleStep(stored->id, Step::kPoll, now + PollDelay(*b));
  }
  return Resumed::kResumed;
}

}  // namespace videotask::engine
