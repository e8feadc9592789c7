// The image a task sends: a data URI when it fits, else the uploads flow.
#include <optional>
#include <string>
#include <utility>

#include "absl/random/distributions.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/api/errors.h"
#include "backends/http/url_policy.h"
#include "backends/runway/runway_backend.h"
#include "backends/runway/runway_wire.h"
#include "common/log.h"

namespace videotask::backends {

using runway_internal::Annotate;
using runway_internal::DataUriLength;
using runway_internal::Dump;
using runway_internal::Is2xx;
using runway_internal::Json;
using runway_internal::kMaxApiAnswerBytes;
using runway_internal::kUploadTimeout;
using runway_internal::MultipartBody;
using runway_internal::NotSent;
using runway_internal::ParseJson;
using runway_internal::StatusFromAnswer;
using runway_internal::StringField;
using runway_internal::UploadFilename;

std::string RunwayBackend::NewBoundary(absl::string_view content) {
  absl::MutexLock lock(&rng_mu_);
  std::string boundary;
  do {
    boundary = absl::StrCat("videotask-", absl::Hex(absl::Uniform<uint64_t>(rng_)),
                            absl::Hex(absl::Uniform<uint64_t>(rng_)));
  } while (absl::StrContains(content, boundary));
  return boundary;
}

absl::StatusOr<std::string> RunwayBackend::PromptImage(const StartRequest& request) {
  if (!request.image_uri.empty()) return request.image_uri;
  if (DataUriLength(request.image_mime_type, request.image_bytes.size()) <=
      kRunwayMaxDataUriChars) {
    return absl::StrCat("data:", request.image_mime_type, ";base64,",
                        absl::Base64Escape(request.image_bytes));
  }
  return Upload(request);
}

absl::StatusOr<std::string> RunwayBackend::Upload(const StartRequest& request) {
  Json ask = {{"filename", UploadFilename(request)}, {"type", "ephemeral"}};
  absl::StatusOr<HttpResponse> answer = http_->Send(ApiRequest("POST", "/v1/uploads", Dump(ask)));
  if (!answer.ok()) return NotSent(Annotate(answer.status(), "RunwayML uploads"));
  if (!Is2xx(answer->status)) {
    return StatusFromAnswer("uploads", *answer, clock_.Now());
  }
  std::optional<Json> json = ParseJson(answer->body);
  std::optional<std::string> upload_url;
  std::optional<std::string> runway_uri;
  const Json* fields = nullptr;
  if (json.has_value()) {
    upload_url = StringField(*json, "uploadUrl");
    runway_uri = StringField(*json, "runwayUri");
    auto it = json->is_object() ? json->find("fields") : json->end();
    if (json->is_object() && it != json->end() && it->is_object()) fields = &*it;
  }
  if (!upload_url.has_value() || !runway_uri.has_value() || fields == nullptr ||
      !absl::StartsWith(*runway_uri, "runway://")) {
    return absl::UnavailableError(
        absl::StrCat("RunwayML uploads: unreadable answer (HTTP ", answer->status, ")"));
  }
  if (absl::Status allowed = CheckUrlAllowed(*upload_url); !allowed.ok()) {
    return absl::UnavailableError(
        absl::StrCat("RunwayML uploads: upload URL refused: ", allowed.message()));
  }

  const std::string boundary = NewBoundary(request.image_bytes);
  std::string body = MultipartBody(*fields, boundary, request);

  HttpRequest post;
  post.method = "POST";
  post.url = *upload_url;
  post.headers = {{"Content-Type", absl::StrCat("multipart/form-data; boundary=", boundary)}};
  post.body = std::move(body);
  post.timeout = kUploadTimeout;
  post.max_response_bytes = kMaxApiAnswerBytes;
  absl::StatusOr<HttpResponse> stored = http_->Send(post);
  if (!stored.ok()) return NotSent(Annotate(stored.status(), "RunwayML image upload"));
  if (!Is2xx(stored->status)) {
    // The presigned target's error body is not passed on.
    std::string message =
        absl::StrCat("RunwayML image upload: the upload target answered HTTP ", stored->status);
    absl::Status status;
    if (stored->status == 400 || stored->status == 413) {
      status = absl::InvalidArgumentError(message);
    } else if (stored->status == 429) {
      status = absl::ResourceExhaustedError(message);
    } else {
      status = absl::UnavailableError(message);
    }
    return WithHttpStatus(std::move(status), stored->status);
  }
  VT_LOG_INFO("runway: uploaded image of task {} ({} bytes)", request.task_id,
              request.image_bytes.size());
  return *runway_uri;
}

}  // namespace videotask::backends
