// The fal.ai queue API wire format as pure functions: the provider task id
// we store, request bodies per model, the parsing of submit, status and
// result answers, and the mapping of HTTP answers to statuses (see
// backends/api/errors.h). No I/O here, so the fuzzer and unit tests call
// them directly.
#ifndef VIDEOTASK_BACKENDS_FAL_FAL_WIRE_H_
#define VIDEOTASK_BACKENDS_FAL_FAL_WIRE_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/api/backend.h"
#include "backends/http/http_transport.h"

namespace videotask::backends::fal_internal {

using Json = nlohmann::json;

inline constexpr absl::Duration kUploadTimeout = absl::Minutes(5);
inline constexpr absl::Duration kDownloadTimeout = absl::Minutes(30);
inline constexpr int64_t kMaxApiAnswerBytes = 4 << 20;
inline constexpr size_t kMaxProviderTaskId = 128;

// Serializes; invalid UTF-8 is replaced rather than thrown on.
std::string Dump(const Json& json);
std::optional<Json> ParseJson(absl::string_view text);
std::optional<std::string> StringField(const Json& object, const char* name);
bool Is2xx(int status);
// Rebuilds `status` with `prefix` in front of its message, payloads kept.
absl::Status Annotate(const absl::Status& status, absl::string_view prefix);
// The same failure without the "may have been sent" mark (steps before the
// submit bill nothing and are safe to repeat).
absl::Status NotSent(const absl::Status& status);
// Retry-After (seconds or HTTP-date) of an answer, when sane.
std::optional<absl::Duration> ParseRetryAfter(const HttpResponse& response, absl::Time now);
// Percent-encodes one path segment.
std::string EscapeSegment(absl::string_view segment);

// "fal-ai/kling-video/v2.1/standard/image-to-video" -> owner "fal-ai", app
// "kling-video". Status, result and cancel use owner/app only.
struct AppRef {
  std::string owner;
  std::string app;
  std::string request_id;
};
// The owner/app of a model id; nullopt when it has fewer than two segments
// or characters outside [A-Za-z0-9._-].
std::optional<AppRef> AppOfModel(absl::string_view model);
// What we store as provider_task_id: "<owner>/<app>:<request_id>" (at most
// 128 printable ASCII characters, no spaces), so a restarted server can
// rebuild the queue URLs from the base URL.
std::string EncodeTaskId(const AppRef& ref);
std::optional<AppRef> DecodeTaskId(absl::string_view provider_task_id);
// "/{owner}/{app}/requests/{id}" + suffix ("", "/status", "/cancel").
std::string RequestPath(const AppRef& ref, absl::string_view suffix);

// The request id of a submit answer, when it is there and plausible.
std::optional<std::string> ParseSubmitAnswer(absl::string_view body);

// A status answer: IN_QUEUE / IN_PROGRESS / COMPLETED.
struct QueueStatus {
  std::string status;
  std::optional<int64_t> queue_position;
};
absl::StatusOr<QueueStatus> ParseStatusAnswer(absl::string_view body);
// The poll result while not completed: pending with its queue position in
// the status text ("IN_QUEUE (position 3)"), or running.
PollResult PendingResult(const QueueStatus& status);

// The provider's error of a body: {"detail": [{"msg","type",...}]},
// {"detail": "...", "error_type": "..."}, bounded. Codes come from `type`
// or `error_type` (or the X-Fal-Error-Type header).
struct ProviderError {
  std::string message;
  std::string type;
};
ProviderError ParseProviderError(const HttpResponse& response);
// The result of a COMPLETED request: succeeded with the video URL, or
// failed with the provider's message and code (moderation is never
// retryable). Answers that say "try again" (429, 5xx, unreadable) are an
// UNAVAILABLE / RESOURCE_EXHAUSTED status instead.
absl::StatusOr<PollResult> ParseResultAnswer(const HttpResponse& response, absl::Time now);

// Maps an HTTP answer that is not a success to a status. These requests
// were answered, so nothing here is "maybe sent".
absl::Status StatusFromAnswer(absl::string_view op, const HttpResponse& response, absl::Time now);

// "data:<mime>;base64,..." length for `bytes` image bytes.
int64_t DataUriLength(absl::string_view mime, int64_t bytes);
// A safe file name for the storage upload, with an extension for the type.
std::string UploadFilename(const StartRequest& request);

}  // namespace videotask::backends::fal_internal

#endif  // VIDEOTASK_BACKENDS_FAL_FAL_WIRE_H_
