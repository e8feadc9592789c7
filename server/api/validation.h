// Turns a SubmitTaskRequest into a normalized task, or an INVALID_ARGUMENT
// naming the field path and what is allowed.
#ifndef VIDEOTASK_SERVER_API_VALIDATION_H_
#define VIDEOTASK_SERVER_API_VALIDATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/http/url_policy.h"
#include "absl/strings/string_view.h"
#include "backends/api/backend.h"
#include "backends/api/capabilities.h"
#include "server/domain/task.h"
#include "server/store/task_store.h"
#include "videotask/v1/video_task_service.pb.h"

namespace videotask::api {

struct ValidatorOptions {
  std::string default_backend;
  std::string image_root;  // "" = server_path images are refused
  int64_t max_image_bytes = 16 << 20;
  // Webhooks: off refuses spec.notify_url and spec.notify_events; the hosts
  // a notify_url may reach beyond https:// to public addresses.
  bool webhooks_enabled = false;
  backends::HostAllowList webhook_allow_hosts;
};

// The longest spec.notify_url.
inline constexpr size_t kMaxNotifyUrl = 2048;

// Limits callers can rely on (documented in the proto).
inline constexpr int kMaxLabels = 64;
inline constexpr size_t kMaxLabelKey = 63;
inline constexpr size_t kMaxLabelValue = 256;
inline constexpr int kMinPriority = -100;
inline constexpr int kMaxPriority = 100;
inline constexpr size_t kMaxRequestId = 128;
inline constexpr size_t kMaxFilename = 255;
inline constexpr size_t kMaxUri = backends::kMaxImageUri;

// A label key: 1..kMaxLabelKey characters of [a-z0-9._-] starting with a
// letter (submit and the ListTasks filter share the rule).
bool IsLabelKey(absl::string_view key);
// What errors say a label key must be.
std::string LabelKeyRule();

// Checks what every backend shares (image source and bytes, labels, stub,
// priority, request id) and lets the chosen backend check the rest: its
// declared capabilities (model, ratio, duration, prompt, image types and
// size, moderation; backends/api/capabilities.h), then Backend::Validate.
// Thread-safe (const).
class Validator {
 public:
  // `backends` is borrowed (the engine's) and outlives the validator.
  Validator(ValidatorOptions options, const std::vector<backends::EnabledBackend>& backends)
      : options_(std::move(options)), backends_(backends) {}

  // `field_prefix` is prepended to field paths ("requests[3]." in a batch).
  // May read a server_path image from disk.
  absl::StatusOr<store::NewTask> Validate(const v1::SubmitTaskRequest& request,
                                          absl::string_view field_prefix) const;
  const std::string& default_backend() const { return options_.default_backend; }

 private:
  // The backend the spec names (or the default); fills spec.backend.
  absl::StatusOr<const backends::EnabledBackend*> ResolveBackend(const v1::TaskSpec& in,
                                                                 absl::string_view p,
                                                                 TaskSpec& spec) const;
  // The image: its source, its bytes (into `bytes`, empty for an https://
  // image), their type and size against the backend's capabilities.
  absl::Status ValidateImage(const v1::ImageInput& image, const backends::Capabilities& caps,
                             absl::string_view p, Task& task, std::string& bytes) const;
  // Reads the bytes of a content, data: URI or server_path image; for an
  // https:// image leaves `bytes` empty. Sets `bytes_field` to the field
  // errors about the bytes name.
  absl::Status ReadImageSource(const v1::ImageInput& image, const backends::Capabilities& caps,
                               absl::string_view p, TaskSpec& spec, std::string& bytes,
                               std::string& bytes_field) const;
  absl::StatusOr<std::string> ReadServerPath(const std::string& path, int64_t max_bytes,
                                             absl::string_view p) const;

  const ValidatorOptions options_;
  const std::vector<backends::EnabledBackend>& backends_;
};

}  // namespace videotask::api

#endif  // VIDEOTASK_SERVER_API_VALIDATION_H_
