// The image a request sends: a data URI when small, else fal's storage
// upload (initiate, then PUT the bytes to the URL it hands out); https://
// images pass through. Nothing here is billed, so every failure is safe to
// retry (never "maybe sent").
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/api/errors.h"
#include "backends/fal/fal_backend.h"
#include "backends/fal/fal_wire.h"
#include "backends/http/url_policy.h"
#include "common/log.h"

namespace videotask::backends {

using fal_internal::Annotate;
using fal_internal::Dump;
using fal_internal::Is2xx;
using fal_internal::Json;
using fal_internal::kMaxApiAnswerBytes;
using fal_internal::kUploadTimeout;
using fal_internal::NotSent;
using fal_internal::ParseJson;
using fal_internal::StatusFromAnswer;
using fal_internal::StringField;
using fal_internal::UploadFilename;

absl::StatusOr<std::string> FalBackend::ImageUrl(const StartRequest& request) {
  if (!request.image_uri.empty()) return request.image_uri;
  if (static_cast<int64_t>(request.image_bytes.size()) <= kFalMaxDataUriBytes) {
    return absl::StrCat("data:", request.image_mime_type, ";base64,",
                        absl::Base64Escape(request.image_bytes));
  }
  return Upload(request);
}

absl::StatusOr<std::string> FalBackend::Upload(const StartRequest& request) {
  Json ask = {{"content_type", request.image_mime_type}, {"file_name", UploadFilename(request)}};
  absl::StatusOr<HttpResponse> answer = http_->Send(ApiRequest(
      "POST",
      absl::StrCat(options_.storage_url, "/storage/upload/initiate?storage_type=fal-cdn-v3"),
      Dump(ask)));
  if (!answer.ok()) return NotSent(Annotate(answer.status(), "fal storage upload"));
  if (!Is2xx(answer->status)) {
    return NotSent(StatusFromAnswer("storage upload", *answer, clock_.Now()));
  }
  std::optional<Json> json = ParseJson(answer->body);
  std::optional<std::string> upload_url;
  std::optional<std::string> file_url;
  if (json.has_value()) {
    upload_url = StringField(*json, "upload_url");
    file_url = StringField(*json, "file_url");
  }
  if (!upload_url.has_value() || !file_url.has_value() || !IsHttpsImageUri(*file_url)) {
    return absl::UnavailableError(
        absl::StrCat("fal storage upload: unreadable answer (HTTP ", answer->status, ")"));
  }
  if (absl::Status allowed = CheckUrlAllowed(*upload_url); !allowed.ok()) {
    return absl::UnavailableError(
        absl::StrCat("fal storage upload: upload URL refused: ", allowed.message()));
  }
  HttpRequest put;
  put.method = "PUT";
  put.url = *upload_url;  // presigned: the key does not go there
  put.headers = {{"Content-Type", request.image_mime_type}};
  put.body = request.image_bytes;
  put.timeout = kUploadTimeout;
  put.max_response_bytes = kMaxApiAnswerBytes;
  absl::StatusOr<HttpResponse> stored = http_->Send(put);
  if (!stored.ok()) return NotSent(Annotate(stored.status(), "fal image upload"));
  if (!Is2xx(stored->status)) {
    std::string message =
        absl::StrCat("fal image upload: the upload target answered HTTP ", stored->status);
    absl::Status status = stored->status == 400 || stored->status == 413
                              ? absl::InvalidArgumentError(message)
                          : stored->status == 429 ? absl::ResourceExhaustedError(message)
                                                  : absl::UnavailableError(message);
    return WithHttpStatus(std::move(status), stored->status);
  }
  VT_LOG_INFO("fal: uploaded image of task {} ({} bytes)", request.task_id,
              request.image_bytes.size());
  return *file_url;
}

}  // namespace videotask::backends
