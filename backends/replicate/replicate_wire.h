// The Replicate predictions API wire format as pure functions: JSON helpers,
// the mapping of HTTP answers to statuses (see backends/api/errors.h), the
// create body per model, and the parsers of predictions and file objects. No
// I/O here, so the fuzzer and the unit tests call them directly.
#ifndef VIDEOTASK_BACKENDS_REPLICATE_REPLICATE_WIRE_H_
#define VIDEOTASK_BACKENDS_REPLICATE_REPLICATE_WIRE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/api/backend.h"
#include "backends/http/http_transport.h"
#include "backends/replicate/replicate_models.h"

namespace videotask::backends::replicate_internal {

using Json = nlohmann::json;

inline constexpr absl::Duration kUploadTimeout = absl::Minutes(5);
inline constexpr absl::Duration kDownloadTimeout = absl::Minutes(30);
inline constexpr int64_t kMaxApiAnswerBytes = 4 << 20;

// Serializes; invalid UTF-8 is replaced rather than thrown on.
std::string Dump(const Json& json);
std::optional<Json> ParseJson(absl::string_view text);
// A string member of an object, or nullopt.
std::optional<std::string> StringField(const Json& object, const char* name);
// The provider's own words from an RFC 7807 problem body ("detail", else
// "title"), bounded; "" when there are none.
std::string ProviderMessage(absl::string_view body);
bool Is2xx(int status);
// Rebuilds `status` with `prefix` in front of its message, payloads kept.
absl::Status Annotate(const absl::Status& status, absl::string_view prefix);
// The same failure without the "may have been sent" mark: for the upload
// before a create, which bills nothing and is safe to repeat.
absl::Status NotSent(const absl::Status& status);
// The delay an answer asks for: the Retry-After header (seconds or an HTTP
// date), else a "retry_after" number in the JSON body; nullopt when absent
// or insane.
std::optional<absl::Duration> ParseRetryAfter(const HttpResponse& response, absl::Time now);
// Maps an HTTP answer that is not a success to a status. These requests were
// answered, so nothing here is "maybe sent".
absl::Status StatusFromAnswer(absl::string_view op, const HttpResponse& response, absl::Time now);
// Percent-encodes one path segment.
std::string EscapeSegment(absl::string_view segment);
// A prediction id as the API hands them out: 1..128 characters of printable
// ASCII without spaces. Anything else is not trusted into logs, the store or
// request paths.
bool IsPlausiblePredictionId(absl::string_view id);
// "/v1/models/{owner}/{name}/predictions" for "owner/name"; nullopt when the
// model is not of that shape.
std::optional<std::string> CreatePath(absl::string_view model);
// True for https://replicate.delivery/... and its subdomains: the hosts
// Replicate serves outputs from.
bool IsReplicateDeliveryUrl(absl::string_view url);

// The provider state of a prediction status; nullopt for a word this
// backend does not know (treated as still pending by the caller).
std::optional<ProviderState> StateFromText(absl::string_view text);
// A failure the provider's moderation raised (E005, NSFW, sensitive, safety):
// never worth trying again.
bool IsModerationFailure(absl::string_view error);
// "E005" from "... (E005)"; "" when the message carries no such code.
std::string FailureCode(absl::string_view error);

// What a prediction object says, checked.
struct Prediction {
  std::string id;
  std::string status;  // Replicate's word; printable, at most 40 characters
  std::optional<ProviderState> state;  // nullopt: a status we do not know
  std::vector<std::string> output_urls;  // succeeded: every string URL, in order
  std::string error;                     // failed: the provider's message, bounded
  bool data_removed = false;
};
// A prediction object; UNAVAILABLE for anything unreadable (no object, no
// plausible id, no status string).
absl::StatusOr<Prediction> ParsePrediction(absl::string_view body);
// The PollResult of a parsed prediction.
PollResult ToPollResult(const Prediction& prediction);

// `{"input": {...}}` for POST /v1/models/{owner}/{name}/predictions: the
// task's prompt, image, ratio, duration and seed under the model's own input
// names, then each model option typed as the model declares it.
// INVALID_ARGUMENT names the field a value cannot be sent for.
absl::StatusOr<Json> CreateBody(const StartRequest& request, const ResolvedOptions& resolved,
                                const ReplicateModel& model, const std::string& image);
// One option value as JSON of its declared type; INVALID_ARGUMENT naming
// model_options.<name> when the text is not of that type.
absl::StatusOr<Json> OptionValue(const ModelOption& option, absl::string_view text);

// The data URI of image bytes.
std::string DataUri(absl::string_view mime, absl::string_view bytes);
// A safe file name for the files endpoint: the base name, [A-Za-z0-9._-]
// only, with an extension matching the type.
std::string UploadFilename(const StartRequest& request);
// multipart/form-data for POST /v1/files: content (the image), filename,
// type. `boundary` must not occur in the image bytes.
std::string FilesMultipartBody(absl::string_view boundary, const StartRequest& request);
// urls.get of a file object; nullopt when unreadable.
std::optional<std::string> ParseFileUrl(absl::string_view body);

}  // namespace videotask::backends::replicate_internal

#endif  // VIDEOTASK_BACKENDS_REPLICATE_REPLICATE_WIRE_H_
