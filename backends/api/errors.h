// How backends describe failures to the engine, on top of absl::Status codes:
//   UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED: transient
//   (retryable; IsRetryable below is the one place that says so);
//   INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED, NOT_FOUND,
//   FAILED_PRECONDITION and everything else: permanent.
// Payloads add what a code cannot say: whether a request may have reached
// the provider (a create that may have been sent is never re-sent), when to
// retry (Retry-After), and the provider's HTTP status.
#ifndef VIDEOTASK_BACKENDS_API_ERRORS_H_
#define VIDEOTASK_BACKENDS_API_ERRORS_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace videotask::backends {

// Marks `status` as "the request may have reached the provider" (a timeout or
// reset after sending, or an unreadable answer).
absl::Status MarkMaybeSent(absl::Status status);
bool MaybeSent(const absl::Status& status);

// Attaches a provider-requested delay before the next try.
absl::Status WithRetryAfter(absl::Status status, absl::Duration delay);
std::optional<absl::Duration> RetryAfter(const absl::Status& status);

// Attaches the provider's HTTP status code.
absl::Status WithHttpStatus(absl::Status status, int http_status);
std::optional<int> HttpStatus(const absl::Status& status);

// Transient by code: the same call may succeed later. The engine's retry
// decision (server/engine/error_policy.h) and the API's Error.retryable
// both come from here.
bool IsRetryable(const absl::Status& status);

}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_API_ERRORS_H_
