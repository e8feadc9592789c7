#include "server/engine/error_policy.h"

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "backends/api/errors.h"

namespace videotask::engine {
namespace {

const char* CodeFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
      return kErrProviderRejected;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return kErrProviderAuth;
    case absl::StatusCode::kResourceExhausted:
      return kErrRateLimited;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
      return kErrProviderUnavailable;
    case absl::StatusCode::kNotFound:
      return kErrProviderNotFound;
    default:
      return kErrInternal;
  }
}

}  // namespace

TaskError ErrorFromStatus(const absl::Status& status, bool retryable) {
  TaskError error;
  error.code = CodeFor(status.code());
  error.message = std::string(status.message());
  error.retryable = retryable;
  if (std::optional<int> http = backends::HttpStatus(status); http.has_value()) {
    error.provider_code = absl::StrCat("HTTP_", *http);
  }
  return error;
}

ErrorDecision DecideStepError(const absl::Status& status, int attempts, const RetryPolicy& policy,
                              absl::string_view code) {
  bool retry = policy.ShouldRetry(status, attempts);
  ErrorDecision decision{retry ? Verdict::kRetry : Verdict::kFail, ErrorFromStatus(status, retry)};
  if (!code.empty()) decision.error.code = std::string(code);
  if (!retry && backends::IsRetryable(status)) {
    decision.error.message =
        absl::StrCat("gave up after ", attempts, " attempts: ", decision.error.message);
  }
  return decision;
}

ErrorDecision DecideCreateError(const absl::Status& status, int attempts,
                                const RetryPolicy& policy, absl::string_view backend) {
  if (!backends::MaybeSent(status)) return DecideStepError(status, attempts, policy);
  return ErrorDecision{
      Verdict::kAmbiguous,
      TaskError{kErrSubmissionAmbiguous,
                absl::StrCat("the create request may have reached ", backend,
                             " but its answer was lost (", status.message(),
                             "); it is not sent again, so the task is never paid twice (check "
                             "the provider's task list)"),
                false, ErrorFromStatus(status, false).provider_code}};
}

bool ShouldRetryProviderCancel(const absl::Status& status, int attempts,
                               const RetryPolicy& policy) {
  return !status.ok() && status.code() != absl::StatusCode::kNotFound &&
         policy.ShouldRetry(status, attempts);
}

TaskError InterruptedCreateError() {
  return TaskError{kErrSubmissionAmbiguous,
                   "the server stopped while this task was being created at the provider; it "
                   "may exist there, so it is not sent again (check the provider's task list)",
                   false, ""};
}

}  // namespace videotask::engine
