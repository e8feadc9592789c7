// The image a prediction takes: an https:// URL as given, a data URI when
// small, else a file uploaded through Replicate's files API.
#include <optional>
#include <string>
#include <utility>

#include "absl/random/distributions.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/api/errors.h"
#include "backends/http/url_policy.h"
#include "backends/replicate/replicate_backend.h"
#include "backends/replicate/replicate_wire.h"
#include "common/log.h"

namespace videotask::backends {

using replicate_internal::Annotate;
using replicate_internal::DataUri;
using replicate_internal::FilesMultipartBody;
using replicate_internal::Is2xx;
using replicate_internal::kUploadTimeout;
using replicate_internal::NotSent;
using replicate_internal::ParseFileUrl;
using replicate_internal::StatusFromAnswer;

std::string ReplicateBackend::NewBoundary(absl::string_view content) {
  absl::MutexLock lock(&rng_mu_);
  std::string boundary;
  do {
    boundary = absl::StrCat("videotask-", absl::Hex(absl::Uniform<uint64_t>(rng_)),
                            absl::Hex(absl::Uniform<uint64_t>(rng_)));
  } while (absl::StrContains(content, boundary));
  return boundary;
}

absl::StatusOr<std::string> ReplicateBackend::ImageInput(const StartRequest& request) {
  if (!request.image_uri.empty()) return request.image_uri;
  if (static_cast<int64_t>(request.image_bytes.size()) <= kReplicateMaxDataUriBytes) {
    return DataUri(request.image_mime_type, request.image_bytes);
  }
  return Upload(request);
}

absl::StatusOr<std::string> ReplicateBackend::Upload(const StartRequest& request) {
  const std::string boundary = NewBoundary(request.image_bytes);
  HttpRequest post = ApiRequest("POST", "/v1/files", "");
  post.headers.emplace_back("Content-Type",
                            absl::StrCat("multipart/form-data; boundary=", boundary));
  post.body = FilesMultipartBody(boundary, request);
  post.timeout = kUploadTimeout;
  // Nothing is billed before the create: every failure here may be retried.
  absl::StatusOr<HttpResponse> answer = http_->Send(post);
  if (!answer.ok()) return NotSent(Annotate(answer.status(), "Replicate file upload"));
  if (!Is2xx(answer->status)) {
    return NotSent(StatusFromAnswer("file upload", *answer, clock_.Now()));
  }
  std::optional<std::string> url = ParseFileUrl(answer->body);
  if (!url.has_value()) {
    return absl::UnavailableError(
        absl::StrCat("Replicate file upload: unreadable answer (HTTP ", answer->status, ")"));
  }
  if (absl::Status allowed = CheckUrlAllowed(*url); !allowed.ok()) {
    return absl::UnavailableError(
        absl::StrCat("Replicate file upload: file URL refused: ", allowed.message()));
  }
  VT_LOG_INFO("replicate: uploaded image of task {} ({} bytes)", request.task_id,
              request.image_bytes.size());
  return *url;
}

}  // namespace videotask::backends
