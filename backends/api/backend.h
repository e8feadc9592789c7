// The generator backend interface: start a provider task, poll it, cancel
// it, fetch its output, describe what it accepts. Calls block (HTTP); the
// engine runs them on its worker pool, never on a gRPC thread.
#ifndef VIDEOTASK_BACKENDS_API_BACKEND_H_
#define VIDEOTASK_BACKENDS_API_BACKEND_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/api/capabilities.h"
#include "common/clock.h"

namespace videotask::backends {

class HttpTransport;

// A fully validated, resolved request (model, ratio and duration filled in).
struct StartRequest {
  std::string task_id;  // ours; for logs and the mock's bookkeeping
  std::string model;
  // Exactly one of image_bytes (with image_mime_type) and image_uri (https).
  std::string image_bytes;
  std::string image_mime_type;
  std::string image_filename;
  std::string image_uri;
  std::string prompt_text;
  std::string ratio;  // pixel ratio
  int duration_seconds = 0;
  std::optional<uint32_t> seed;
  std::string public_figure_threshold;  // "", "auto", "low"
  std::map<std::string, std::string> labels;
  // Model inputs with no field above, by the provider's own name; values as
  // text, checked against the model's ModelOption declarations.
  std::map<std::string, std::string> model_options;
};

enum class ProviderState { kPending, kThrottled, kRunning, kSucceeded, kFailed, kCancelled };

struct PollResult {
  ProviderState state = ProviderState::kPending;
  std::string status_text;  // the provider's own word: "PENDING", "THROTTLED", ...
  float progress = 0;       // 0..1
  std::vector<std::string> output_urls;  // when succeeded
  std::string failure_message;           // when failed
  std::string failure_code;              // when failed, e.g. "SAFETY.INPUT.IMAGE"
  bool failure_retryable = false;        // the provider says trying again may work
};

// Receives the output video piece by piece.
class OutputSink {
 public:
  virtual ~OutputSink() = default;
  // An error aborts the fetch (e.g. the size cap was passed).
  virtual absl::Status Write(absl::string_view chunk) = 0;
};

// Thread-safe: the engine calls one backend from several workers at once.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual const Capabilities& capabilities() const = 0;
  // Backend-specific checks of a resolved request beyond its capabilities
  // (e.g. the mock's labels). INVALID_ARGUMENT names the field.
  virtual absl::Status Validate(const StartRequest& request) const { return absl::OkStatus(); }
  // Creates the provider task and returns its id. See errors.h for how a
  // failure says whether the request may have reached the provider.
  virtual absl::StatusOr<std::string> Start(const StartRequest& request) = 0;
  virtual absl::StatusOr<PollResult> Poll(absl::string_view provider_task_id) = 0;
  virtual absl::Status Cancel(absl::string_view provider_task_id) = 0;
  // Streams the output of a succeeded task into `sink`. `output_urls` come
  // from the last poll; when they are empty or expired the backend asks the
  // provider again.
  virtual absl::Status FetchOutput(absl::string_view provider_task_id,
                                   const std::vector<std::string>& output_urls,
                                   OutputSink& sink) = 0;
};

// Settings of one enabled backend that the engine uses, from flags. What
// only one backend knows (its URL, its secret, ...) stays in that backend's
// own options (see registry.h).
struct BackendConfig {
  std::string name;
  int max_concurrency = 4;
  absl::Duration min_submit_interval = absl::ZeroDuration();
  absl::Duration poll_interval = absl::Seconds(6);
  absl::Duration poll_jitter = absl::ZeroDuration();  // random extra wait of up to this after poll_interval
  int64_t max_image_bytes = 16 << 20;
  int64_t max_output_bytes = int64_t{512} << 20;
  // What this backend's tasks may cost per UTC day, in USD (estimated:
  // price x duration); 0 = no limit.
  double daily_budget_usd = 0;
};

// What a backend may use; borrowed, outlive the backend.
struct BackendDeps {
  const Clock& clock;
  // Given to this backend alone; not thread-safe, so the backend serializes
  // its use.
  absl::BitGenRef rng;
  HttpTransport* http;  // null when no enabled backend needs HTTP
};

// One enabled backend with its limits: what the engine dispatches to and
// what the API validates against.
struct EnabledBackend {
  BackendConfig config;
  std::unique_ptr<Backend> backend;
};

}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_API_BACKEND_H_
