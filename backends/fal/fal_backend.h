// The fal.ai backend: image-to-video requests through fal's queue API.
// Every request goes through the injected HttpTransport, so tests run the
// real transport against a loopback fake.
//
// Wire facts it relies on (shared/reference/fal-api.md):
//   POST {base}/{owner}/{app}/{path}            model input JSON -> {"request_id", ...}
//   GET  {base}/{owner}/{app}/requests/{id}/status   IN_QUEUE | IN_PROGRESS | COMPLETED
//   GET  {base}/{owner}/{app}/requests/{id}          the result, or the model's error
//   PUT  {base}/{owner}/{app}/requests/{id}/cancel   202, or 400 ALREADY_COMPLETED
//   POST {storage}/storage/upload/initiate           -> {upload_url, file_url}; PUT bytes
// The provider task id is "<owner>/<app>:<request_id>": the queue URLs are
// rebuilt from it and the base URL, so a restarted server polls on.
// Images go as a data URI up to kFalMaxDataUriBytes of image, larger ones
// through the storage upload; https:// images pass through.
#ifndef VIDEOTASK_BACKENDS_FAL_FAL_BACKEND_H_
#define VIDEOTASK_BACKENDS_FAL_FAL_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backends/api/backend.h"
#include "backends/api/registry.h"
#include "backends/fal/fal_models.h"
#include "backends/http/http_transport.h"

namespace videotask::backends {

inline constexpr char kFalName[] = "fal";
inline constexpr char kFalSecretEnv[] = "FAL_KEY";
inline constexpr char kFalDefaultBaseUrl[] = "https://queue.fal.run";
inline constexpr char kFalDefaultStorageUrl[] = "https://rest.fal.ai";
// fal documents no data URI cap for these models; larger images are
// uploaded to fal's storage instead.
inline constexpr int64_t kFalMaxDataUriBytes = 1 << 20;

// What only this backend knows, from its flags and the environment.
struct FalOptions {
  std::string base_url;     // "" = kFalDefaultBaseUrl; http:// only to loopback
  std::string api_key;      // FAL_KEY ("key_id:key_secret"); never logged
  std::string storage_url;  // "" = kFalDefaultStorageUrl (uploads)
};

// Thread-safe: it holds no mutable state.
class FalBackend final : public Backend {
 public:
  // options.api_key is required; deps.http (required) and deps.clock are
  // borrowed and must outlive the backend. FAILED_PRECONDITION without a key
  // or transport; INVALID_ARGUMENT for a URL the URL policy refuses.
  static absl::StatusOr<std::unique_ptr<FalBackend>> Create(const BackendConfig& config,
                                                            FalOptions options,
                                                            const BackendDeps& deps);

  const Capabilities& capabilities() const override { return capabilities_; }
  absl::Status Validate(const StartRequest& request) const override;
  // Checks the request against the capabilities first, so nothing a model
  // does not take is ever sent (and billed).
  absl::StatusOr<std::string> Start(const StartRequest& request) override;
  absl::StatusOr<PollResult> Poll(absl::string_view provider_task_id) override;
  absl::Status Cancel(absl::string_view provider_task_id) override;
  // On failure the sink may hold part of the video; a retry starts over.
  absl::Status FetchOutput(absl::string_view provider_task_id,
                           const std::vector<std::string>& output_urls, OutputSink& sink) override;

 private:
  FalBackend(const BackendConfig& config, FalOptions options, const BackendDeps& deps);

  HttpRequest ApiRequest(absl::string_view method, std::string url, std::string body) const;
  absl::StatusOr<std::string> ImageUrl(const StartRequest& request);
  absl::StatusOr<std::string> Upload(const StartRequest& request);
  absl::StatusOr<PollResult> PollInternal(absl::string_view provider_task_id);
  absl::Status Download(const std::string& url, OutputSink& sink);
  // Last line of defence: the key never leaves in a status.
  absl::Status Scrub(absl::Status status) const;

  const BackendConfig config_;
  const FalOptions options_;  // URLs without a trailing '/'
  HttpTransport* const http_;
  const Clock& clock_;
  const Capabilities capabilities_;
};

// A setup that builds a FalBackend with `options` (tests point it at a fake).
BackendSetup FalSetup(BackendConfig config, FalOptions options);

// "fal": its flags (--fal_*), its secret (FAL_KEY), on by default when the
// secret is set. Defined with the flags in fal_descriptor.cc.
BackendDescriptor FalDescriptor();

}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_FAL_FAL_BACKEND_H_
