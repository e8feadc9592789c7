// Turns a SubmitTaskRequest into a normalized task, or an INVALID_ARGUMENT
// naming the field path and what is allowed.
#ifndef VIDEOTASK_SERVER_API_VALIDATION_H_
#define VIDEOTASK_SERVER_API_VALIDATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/engine/engine.h"
#include "server/store/task_store.h"
#include "videotask/v1/video_task_service.pb.h"

namespace videotask::api {

struct ValidatorOptions {
  std::string default_backend;
  std::string image_root;  // "" = server_path images are refused
  int64_t max_image_bytes = 16 << 20;
};

// Limits callers can rely on (documented in the proto).
inline constexpr int kMaxLabels = 64;
inline constexpr size_t kMaxLabelKey = 63;
inline constexpr size_t kMaxLabelValue = 256;
inline constexpr int kMinPriority = -100;
inline constexpr int kMaxPriority = 100;
inline constexpr size_t kMaxRequestId = 128;
inline constexpr size_t kMaxFilename = 255;
inline constexpr size_t kMaxUri = 2048;

// A label key: 1..kMaxLabelKey characters of [a-z0-9._-] starting with a
// letter (submit and the ListTasks filter share the rule).
bool IsLabelKey(absl::string_view key);
// What errors say a label key must be.
std::string LabelKeyRule();

class Validator {
 public:
  // `backends` is borrowed (the engine's) and outlives the validator.
  Validator(ValidatorOptions options, const std::vector<engine::EngineBackend>& backends)
      : options_(std::move(options)), backends_(backends) {}

  // `field_prefix` is prepended to field paths ("requests[3]." in a batch).
  // May read a server_path image from disk.
  absl::StatusOr<store::NewTask> Validate(const v1::SubmitTaskRequest& request,
                                          absl::string_view field_prefix) const;
  const std::string& default_backend() const { return options_.default_backend; }

 private:
  const ValidatorOptions options_;
  const std::vector<engine::EngineBackend>& backends_;
};

}  // namespace videotask::api

#endif  // VIDEOTASK_SERVER_API_VALIDATION_H_
