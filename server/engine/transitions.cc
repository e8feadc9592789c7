#include "server/engine/transitions.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/engine/error_policy.h"

namespace videotask::engine {
namespace {

// A step that worked: no error, no pending retry.
void ClearRetry(Task& task) {
  task.attempt_count = 0;
  task.error = TaskError();
  task.next_attempt_time = absl::InfinitePast();
}

}  // namespace

Task OnStarted(Task task, const std::string& provider_id, absl::Time now) {
  task.state = TaskState::kRunning;
  task.provider_task_id = provider_id;
  task.provider_status = "PENDING";
  ClearRetry(task);
  task.update_time = std::max(task.update_time, now);
  return task;
}

Task OnPolled(Task task, const backends::PollResult& polled, absl::Time now) {
  task.provider_status = polled.status_text;
  ClearRetry(task);
  switch (polled.state) {
    case backends::ProviderState::kPending:
    case backends::ProviderState::kThrottled:
    case backends::ProviderState::kRunning:
      task.progress = polled.progress;
      break;
    case backends::ProviderState::kSucceeded:
      task.state = TaskState::kDownloading;
      task.progress = 1;
      task.output_urls = polled.output_urls;
      break;
    case backends::ProviderState::kFailed:
      return OnFailed(std::move(task),
                      TaskError{kErrProviderFailed,
                                polled.failure_message.empty()
                                    ? std::string("the provider failed the task")
                                    : polled.failure_message,
                                polled.failure_retryable, polled.failure_code},
                      now);
    case backends::ProviderState::kCancelled:
      return OnCancelledAtProvider(std::move(task), now);
  }
  task.update_time = std::max(task.update_time, now);
  return task;
}

bool PollChangedTask(const Task& before, const Task& after) {
  return after.state != before.state || after.provider_status != before.provider_status ||
         after.progress != before.progress || before.attempt_count != 0 || !before.error.empty();
}

Task OnFetched(Task task, const OutputInfo& output, absl::Time now) {
  task.state = TaskState::kSucceeded;
  task.output_path = output.path;
  task.output_size_bytes = output.size_bytes;
  task.output_sha256 = output.sha256;
  task.progress = 1;
  ClearRetry(task);
  task.end_time = now;
  task.update_time = std::max(task.update_time, now);
  task.lease_owner.clear();
  return task;
}

Task OnFailed(Task task, TaskError error, absl::Time now) {
  task.state = TaskState::kFailed;
  task.error = std::move(error);
  task.end_time = now;
  task.update_time = std::max(task.update_time, now);
  task.next_attempt_time = absl::InfinitePast();
  task.lease_owner.clear();
  return task;
}

Task ToRetry(Task task, TaskError error, absl::Time next_attempt_time) {
  task.state = TaskState::kQueued;
  task.error = std::move(error);
  task.next_attempt_time = next_attempt_time;
  task.lease_owner.clear();
  return task;
}

Task ToStepRetry(Task task, TaskError error, absl::Time next_attempt_time) {
  ++task.attempt_count;
  task.error = std::move(error);
  task.next_attempt_time = next_attempt_time;
  return task;
}

Task ToDiskWait(Task task, TaskError error, absl::Time next_attempt_time) {
  task.error = std::move(error);
  task.next_attempt_time = next_attempt_time;
  return task;
}

Task ToRequeued(Task task) {
  task.state = TaskState::kQueued;
  task.attempt_count = std::max(0, task.attempt_count - 1);
  task.lease_owner.clear();
  return task;
}

Task OnCancelled(Task task, absl::Time now) {
  // SUBMITTING: the provider id is not known yet; the submit step cancels
  // at the provider once it is.
  task.provider_cancel_pending = task.state != TaskState::kQueued;
  task.state = TaskState::kCancelled;
  task.end_time = now;
  task.update_time = now;
  task.error = TaskError{kErrCancelled, "cancelled by a caller", false, ""};
  task.next_attempt_time = absl::InfinitePast();
  return task;
}

Task OnCancelledAtProvider(Task task, absl::Time now) {
  task.state = TaskState::kCancelled;
  task.end_time = now;
  task.update_time = std::max(task.update_time, now);
  task.error = TaskError{kErrCancelled, "cancelled at the provider", false, ""};
  task.lease_owner.clear();
  return task;
}

Task OnCreatedAfterCancel(Task task, const std::string& provider_id) {
  task.provider_task_id = provider_id;
  task.provider_cancel_pending = true;
  return task;
}

Task OnProviderCancelDone(Task task) {
  task.provider_cancel_pending = false;
  task.attempt_count = 0;
  return task;
}

Task ToProviderCancelRetry(Task task) {
  ++task.attempt_count;
  return task;
}

Task ToLeased(Task task, const std::string& owner, absl::Time lease_expiry) {
  task.lease_owner = owner;
  task.lease_expiry = lease_expiry;
  return task;
}

namespace {

absl::Status CheckRetry(const Task& task, const RetryRequest& request) {
  if (task.state == TaskState::kSucceeded) {
    return absl::FailedPreconditionError(absl::StrCat(
        "task ", task.id, " SUCCEEDED; only FAILED or CANCELLED tasks can be retried"));
  }
  if (!IsTerminal(task.state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task.id, " is ", TaskStateName(task.state),
                     "; only FAILED or CANCELLED tasks can be retried (cancel it first)"));
  }
  if (task.provider_cancel_pending) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task.id,
                     " is still being cancelled at its provider; retry it once that is done"));
  }
  if (task.error.code == kErrSubmissionAmbiguous && !request.confirm_possible_duplicate &&
      request.adopt_provider_task_id.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "task ", task.id, " failed with SUBMISSION_AMBIGUOUS: its create may have reached ",
        task.spec.backend,
        " and made a provider task there. Check the provider, then retry with "
        "confirm_possible_duplicate to create it again (it may be paid twice), or with "
        "adopt_provider_task_id to follow the provider task found there"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Task> ToRetried(Task task, const RetryRequest& request, absl::Time now) {
  if (absl::Status ok = CheckRetry(task, request); !ok.ok()) return ok;
  task.attempts.push_back(CurrentTry(task));
  task.provider_task_id.clear();
  task.provider_status.clear();
  task.progress = 0;
  task.output_path.clear();
  task.output_size_bytes = 0;
  task.output_sha256.clear();
  task.output_urls.clear();
  ClearRetry(task);
  task.start_time = absl::InfinitePast();
  task.end_time = absl::InfinitePast();
  task.provider_cancel_pending = false;
  task.lease_owner.clear();
  task.lease_expiry = absl::InfinitePast();
  task.reused_from.clear();  // sent itself, or adopted
  task.update_time = std::max(task.update_time, now);
  if (request.adopt_provider_task_id.empty()) {
    task.state = TaskState::kQueued;
    return task;
  }
  // Followed from here as if this process had created it: polled, fetched,
  // cancellable; the claim (and so a create) never sees it.
  task.state = TaskState::kRunning;
  task.provider_task_id = request.adopt_provider_task_id;
  task.provider_status = "ADOPTED";
  task.start_time = now;
  task.lease_owner = request.owner;
  task.lease_expiry = request.lease_expiry;
  return task;
}

Task OnReused(Task task, const std::string& from, const OutputInfo& output, absl::Time now) {
  task.reused_from = from;
  task.provider_status = absl::StrCat("reused ", from, " (identical)");
  if (task.start_time == absl::InfinitePast()) task.start_time = now;
  return OnFetched(std::move(task), output, now);
}

Task ToUnfollowed(Task task) {
  task.reused_from.clear();
  task.provider_status.clear();
  task.next_attempt_time = absl::InfinitePast();
  return task;
}

Task ToFollowing(Task task, const std::string& leader) {
  task.reused_from = leader;
  task.provider_status = absl::StrCat("waiting for ", leader, " (identical)");
  task.next_attempt_time = absl::InfiniteFuture();
  return task;
}

Task OnInterruptedCreate(Task task, absl::Time now) {
  return OnFailed(std::move(task), InterruptedCreateError(), now);
}

}  // namespace videotask::engine
