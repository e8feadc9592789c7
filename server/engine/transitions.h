// How a task moves: pure functions from a task and what happened to the
// next task. No clock, store, lock or thread here: the steps (steps.cc)
// call the provider, pick the transition and commit its result.
//
//   QUEUED -claim(store)-> SUBMITTING -OnStarted-> RUNNING -OnPolled-> DOWNLOADING
//   DOWNLOADING -OnFetched-> SUCCEEDED; any -OnFailed-> FAILED; any -OnCancelled-> CANCELLED
//   SUBMITTING -ToRetry-> QUEUED (a create refused, safe to send again)
//   FAILED/CANCELLED -ToRetried-> QUEUED, or RUNNING following an adopted provider task
#ifndef VIDEOTASK_SERVER_ENGINE_TRANSITIONS_H_
#define VIDEOTASK_SERVER_ENGINE_TRANSITIONS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/api/backend.h"
#include "server/domain/task.h"
#include "server/engine/output_writer.h"

namespace videotask::engine {

// SUBMITTING -> RUNNING: the provider created the task as `provider_id`.
Task OnStarted(Task task, const std::string& provider_id, absl::Time now);

// A RUNNING task after a successful poll: still RUNNING with the provider's
// status and progress, DOWNLOADING (SUCCEEDED there), FAILED or CANCELLED.
Task OnPolled(Task task, const backends::PollResult& polled, absl::Time now);

// Whether a poll that left the task RUNNING changed anything worth a write.
bool PollChangedTask(const Task& before, const Task& after);

// DOWNLOADING -> SUCCEEDED with the output written.
Task OnFetched(Task task, const OutputInfo& output, absl::Time now);

// Any state -> FAILED with `error`.
Task OnFailed(Task task, TaskError error, absl::Time now);

// SUBMITTING -> QUEUED after a create that is safe to send again; tried
// again from `next_attempt_time`. attempt_count stays (the claim counted it).
Task ToRetry(Task task, TaskError error, absl::Time next_attempt_time);

// A poll or fetch that failed transiently: same state, one more attempt,
// tried again at `next_attempt_time`.
Task ToStepRetry(Task task, TaskError error, absl::Time next_attempt_time);
// A download put off until there is disk space again: the error says why,
// no attempt is counted.
Task ToDiskWait(Task task, TaskError error, absl::Time next_attempt_time);

// SUBMITTING -> QUEUED for a task claimed but never sent (stopping, or its
// backend is gone): the claim's attempt is given back.
Task ToRequeued(Task task);

// Cancelled by a caller. A task that may exist at the provider (not QUEUED)
// keeps provider_cancel_pending until the provider cancel has run.
Task OnCancelled(Task task, absl::Time now);

// RUNNING -> CANCELLED: the provider says it was cancelled there.
Task OnCancelledAtProvider(Task task, absl::Time now);

// A task cancelled here while its create was on its way: records the
// provider id so the provider task is cancelled too.
Task OnCreatedAfterCancel(Task task, const std::string& provider_id);

// The provider cancel ran (or there is nothing to cancel) / is tried again.
Task OnProviderCancelDone(Task task);
Task ToProviderCancelRetry(Task task);

// Taken by this process (recovery, lease takeover) until `lease_expiry`.
Task ToLeased(Task task, const std::string& owner, absl::Time lease_expiry);

// What a caller asks of RetryTask.
struct RetryRequest {
  // The caller checked the provider: creating the task again is wanted even
  // though an ambiguous create may have made one already.
  bool confirm_possible_duplicate = false;
  // Follow this provider task instead of creating one ("" = create).
  std::string adopt_provider_task_id;
  // Who follows an adopted task, and until when (the lease).
  std::string owner;
  absl::Time lease_expiry = absl::InfinitePast();
};

// A FAILED or CANCELLED task begins a new try under the same id: its
// current try moves to `attempts`, and it goes QUEUED to be created again,
// or RUNNING on `adopt_provider_task_id` (leased to `owner`; never created).
// FAILED_PRECONDITION for a SUCCEEDED or active task, a provider cancel
// still pending, and a SUBMISSION_AMBIGUOUS failure retried without
// confirm_possible_duplicate or adopt_provider_task_id.
absl::StatusOr<Task> ToRetried(Task task, const RetryRequest& request, absl::Time now);

// Reuse of identical work (reuse.cc). A QUEUED follower -> SUCCEEDED with
// its own copy (or hard link) of the output of `from`; no provider task of
// its own (provider_task_id stays "").
Task OnReused(Task task, const std::string& from, const OutputInfo& output, absl::Time now);
// A QUEUED follower whose task ended without an output it can take goes
// back to the queue to be sent itself (reused_from cleared, claimable now).
Task ToUnfollowed(Task task);
// A QUEUED follower now waits for `leader` instead (never claimed).
Task ToFollowing(Task task, const std::string& leader);

// A task that was SUBMITTING when its process stopped: FAILED as ambiguous.
Task OnInterruptedCreate(Task task, absl::Time now);

}  // namespace videotask::engine

#endif  // VIDEOTASK_SERVER_ENGINE_TRANSITIONS_H_
