// The RunwayML wire format as pure functions: JSON helpers, the mapping of
// HTTP answers to statuses (see backends/api/errors.h), request pieces. No
// I/O here, so the fuzzers and unit tests call them directly.
#ifndef VIDEOTASK_BACKENDS_RUNWAY_RUNWAY_WIRE_H_
#define VIDEOTASK_BACKENDS_RUNWAY_RUNWAY_WIRE_H_

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/api/backend.h"
#include "backends/http/http_transport.h"

namespace videotask::backends::runway_internal {

using Json = nlohmann::json;

inline constexpr absl::Duration kUploadTimeout = absl::Minutes(5);
inline constexpr absl::Duration kDownloadTimeout = absl::Minutes(30);
inline constexpr int64_t kMaxApiAnswerBytes = 4 << 20;

// Serializes; invalid UTF-8 is replaced rather than thrown on.
std::string Dump(const Json& json);
std::optional<Json> ParseJson(absl::string_view text);
// A string member of an object, or nullopt.
std::optional<std::string> StringField(const Json& object, const char* name);
// The provider's own words from an error body ({"error": "..."}), bounded.
std::string ProviderMessage(absl::string_view body);
bool Is2xx(int status);
// Rebuilds `status` with `prefix` in front of its message, payloads kept.
absl::Status Annotate(const absl::Status& status, absl::string_view prefix);
// The same failure without the "may have been sent" mark: for steps before
// the create, which bill nothing and are safe to repeat.
absl::Status NotSent(const absl::Status& status);
// Retry-After(-Ms) of an answer, when sane.
std::optional<absl::Duration> ParseRetryAfter(const HttpResponse& response, absl::Time now);
// Maps an HTTP answer that is not a success to a status. These requests were
// answered, so nothing here is "maybe sent".
absl::Status StatusFromAnswer(absl::string_view op, const HttpResponse& response, absl::Time now);
// Percent-encodes one path segment.
std::string EscapeSegment(absl::string_view segment);
// A safe file name for the uploads endpoint: the base name, [A-Za-z0-9._-]
// only, with an extension matching the type.
std::string UploadFilename(const StartRequest& request);
// A provider task id as the API hands them out (UUIDs): 1..128 characters of
// printable ASCII without spaces. Anything else is not trusted into logs,
// the store or request paths.
bool IsPlausibleTaskId(absl::string_view id);
// Form-data names and file names inside quotes.
std::string QuoteFormValue(absl::string_view value);
int64_t DataUriLength(absl::string_view mime, int64_t bytes);
absl::StatusOr<ProviderState> StateFromText(absl::string_view text);
// The JSON body of POST /v1/image_to_video, with the model, ratio and
// duration resolved against the capabilities.
Json CreateBody(const StartRequest& request, const ResolvedOptions& resolved,
                const std::string& prompt_image);
// multipart/form-data for the presigned upload: every field of `fields` (a
// JSON object), then the image as "file". `boundary` must not occur in the
// image bytes.
std::string MultipartBody(const Json& fields, absl::string_view boundary,
                          const StartRequest& request);

}  // namespace videotask::backends::runway_internal

#endif  // VIDEOTASK_BACKENDS_RUNWAY_RUNWAY_WIRE_H_
