// The RunwayML backend: image_to_video tasks over the provider's HTTP API
// (API version 2024-11-06). Every request goes through the injected
// HttpTransport, so tests run the real transport against a loopback fake.
//
// Wire facts it relies on (shared/reference/runway-api.md):
//   POST   /v1/image_to_video  camelCase JSON -> {"id": ...}
//   GET    /v1/tasks/{id}      PENDING | THROTTLED | RUNNING | SUCCEEDED | FAILED | CANCELLED
//   DELETE /v1/tasks/{id}      cancel or delete (404: already gone)
//   POST   /v1/uploads         {filename, type:"ephemeral"} -> uploadUrl, fields, runwayUri
// Images go as a base64 data URI when it fits 5,242,880 characters,
// otherwise through the uploads flow; https:// images pass through.
#ifndef VIDEOTASK_BACKENDS_RUNWAY_RUNWAY_BACKEND_H_
#define VIDEOTASK_BACKENDS_RUNWAY_RUNWAY_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "backends/api/backend.h"
#include "backends/api/registry.h"
#include "backends/http/http_transport.h"

namespace videotask::backends {

inline constexpr char kRunwayName[] = "runway";
inline constexpr char kRunwaySecretEnv[] = "RUNWAYML_API_SECRET";
inline constexpr char kRunwayDefaultBaseUrl[] = "https://api.dev.runwayml.com";
inline constexpr char kRunwayApiVersion[] = "2024-11-06";
// Longest data URI the provider takes; larger images are uploaded.
inline constexpr int64_t kRunwayMaxDataUriChars = 5'242'880;

// The capability table of the current image-to-video models.
Capabilities RunwayCapabilities(int64_t max_image_bytes);

// What only this backend knows, from --runway_base_url and the environment.
struct RunwayOptions {
  std::string base_url;    // "" = kRunwayDefaultBaseUrl; http:// only to loopback
  std::string api_secret;  // never logged
};

// Thread-safe; its only mutable state is the generator for upload
// boundaries.
class RunwayBackend final : public Backend {
 public:
  // options.api_secret is required; config.max_image_bytes and
  // config.max_output_bytes bound the transfers. deps.http (required),
  // deps.clock and deps.rng are borrowed and must outlive the backend.
  // FAILED_PRECONDITION "RUNWAYML_API_SECRET is not set" without a secret
  // or without a transport; INVALID_ARGUMENT for a base URL the URL policy
  // refuses.
  static absl::StatusOr<std::unique_ptr<RunwayBackend>> Create(const BackendConfig& config,
                                                               RunwayOptions options,
                                                               const BackendDeps& deps);

  const Capabilities& capabilities() const override { return capabilities_; }
  // Checks the request against the capabilities first, so nothing a model
  // does not take is ever sent (and billed).
  absl::StatusOr<std::string> Start(const StartRequest& request) override;
  absl::StatusOr<PollResult> Poll(absl::string_view provider_task_id) override;
  absl::Status Cancel(absl::string_view provider_task_id) override;
  // On failure the sink may hold part of the video; a retry starts over.
  absl::Status FetchOutput(absl::string_view provider_task_id,
                           const std::vector<std::string>& output_urls,
                           OutputSink& sink) override;

 private:
  RunwayBackend(const BackendConfig& config, RunwayOptions options, const BackendDeps& deps);

  // A request to the provider's API, with its headers.
  HttpRequest ApiRequest(absl::string_view method, absl::string_view path,
                         std::string body) const;
  absl::StatusOr<std::string> PromptImage(const StartRequest& request);
  absl::StatusOr<std::string> Upload(const StartRequest& request);
  // A multipart boundary that does not occur in `content`.
  std::string NewBoundary(absl::string_view content) ABSL_LOCKS_EXCLUDED(rng_mu_);
  absl::StatusOr<PollResult> PollInternal(absl::string_view provider_task_id);
  // Fetches one URL into the sink. *retry_with_fresh_url is set when the
  // URL looks expired (401/403/404/410).
  absl::Status Download(const std::string& url, OutputSink& sink, bool* retry_with_fresh_url);
  // Last line of defence: the secret never leaves in a status.
  absl::Status Scrub(absl::Status status) const;

  const BackendConfig config_;
  const RunwayOptions options_;  // base_url without a trailing '/'
  HttpTransport* const http_;
  const Clock& clock_;
  const Capabilities capabilities_;
  absl::Mutex rng_mu_;
  absl::BitGenRef rng_ ABSL_GUARDED_BY(rng_mu_);
};

// A setup that builds a RunwayBackend with `options` (tests use it to point
// the backend at a fake).
BackendSetup RunwaySetup(BackendConfig config, RunwayOptions options);

// "runway": its flags (--runway_*), its secret (RUNWAYML_API_SECRET), on by
// default when the secret is set. Defined with the flags in
// runway_descriptor.cc.
BackendDescriptor RunwayDescriptor();

}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_RUNWAY_RUNWAY_BACKEND_H_
