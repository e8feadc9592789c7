// What the engine does with a failed provider call, in one place: which
// error code the task gets, whether the call is tried again and when a
// create is ambiguous. Whether a status is transient at all is
// backends::IsRetryable (backends/api/errors.h), which the API's
// Error.retryable uses too.
#ifndef VIDEOTASK_SERVER_ENGINE_ERROR_POLICY_H_
#define VIDEOTASK_SERVER_ENGINE_ERROR_POLICY_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/domain/task.h"
#include "server/engine/retry_policy.h"

namespace videotask::engine {

// Error codes the engine puts on tasks (Task.error.code).
inline constexpr char kErrSubmissionAmbiguous[] = "SUBMISSION_AMBIGUOUS";
inline constexpr char kErrProviderFailed[] = "PROVIDER_FAILED";
inline constexpr char kErrProviderRejected[] = "PROVIDER_REJECTED";
inline constexpr char kErrProviderAuth[] = "PROVIDER_AUTH";
inline constexpr char kErrProviderUnavailable[] = "PROVIDER_UNAVAILABLE";
inline constexpr char kErrRateLimited[] = "RATE_LIMITED";
inline constexpr char kErrProviderNotFound[] = "PROVIDER_TASK_NOT_FOUND";
inline constexpr char kErrDownloadFailed[] = "DOWNLOAD_FAILED";
// A download waits for free space in the output folder (retried, never
// failed for it).
inline constexpr char kErrDiskFull[] = "DISK_FULL";
inline constexpr char kErrCancelled[] = "CANCELLED";
inline constexpr char kErrInternal[] = "INTERNAL";

// The task error for `status`: the code by status code, the provider's HTTP
// status (if any) as provider_code, `retryable` as given.
TaskError ErrorFromStatus(const absl::Status& status, bool retryable);

enum class Verdict {
  kRetry,      // try the same call again after a backoff
  kFail,       // the task fails with `error`
  kAmbiguous,  // a create that may have reached the provider: fails, never re-sent
};

struct ErrorDecision {
  Verdict verdict;
  TaskError error;  // retryable iff verdict == kRetry
};

// After a failed call with `attempts` tries made (this one included). A
// non-empty `code` replaces the code by status (DOWNLOAD_FAILED for fetches).
ErrorDecision DecideStepError(const absl::Status& status, int attempts, const RetryPolicy& policy,
                              absl::string_view code = "");

// After a failed create at `backend`: ambiguous when the request may have
// been sent, else as DecideStepError.
ErrorDecision DecideCreateError(const absl::Status& status, int attempts,
                                const RetryPolicy& policy, absl::string_view backend);

// A provider cancel is tried again while transient and attempts remain; a
// NOT_FOUND means there is nothing left to cancel.
bool ShouldRetryProviderCancel(const absl::Status& status, int attempts, const RetryPolicy& policy);

// The error of a task found SUBMITTING after its process stopped.
TaskError InterruptedCreateError();

}  // namespace videotask::engine

#endif  // VIDEOTASK_SERVER_ENGINE_ERROR_POLICY_H_
