// The Replicate backend: image-to-video predictions of curated official
// models over Replicate's HTTP API. Every request goes through the injected
// HttpTransport, so tests run the real transport against a loopback fake.
//
// Wire facts it relies on (shared/reference/replicate-api.md):
//   POST /v1/models/{owner}/{name}/predictions  {"input": {...}} -> 201 prediction
//   GET  /v1/predictions/{id}          starting | processing | succeeded | failed
//                                      | canceled | aborted
//   POST /v1/predictions/{id}/cancel   -> 200 prediction
//   POST /v1/files                     multipart (content, filename, type) -> urls.get
// No `Prefer: wait` (a held socket helps nobody for minutes-long videos).
// Images up to 256 KB go as data URIs, larger ones through the files API;
// https:// images pass through. Outputs are deleted by Replicate an hour
// after the prediction ends, so the engine fetches them at once.
#ifndef VIDEOTASK_BACKENDS_REPLICATE_REPLICATE_BACKEND_H_
#define VIDEOTASK_BACKENDS_REPLICATE_REPLICATE_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>
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
#include "backends/replicate/replicate_models.h"

namespace videotask::backends {

inline constexpr char kReplicateName[] = "replicate";
inline constexpr char kReplicateSecretEnv[] = "REPLICATE_API_TOKEN";
inline constexpr char kReplicateDefaultBaseUrl[] = "https://api.replicate.com";
// Largest image sent inline as a data URI (Replicate's docs: data URLs for
// files up to 256 KB); larger ones are uploaded through the files API.
inline constexpr int64_t kReplicateMaxDataUriBytes = 256 * 1024;

// What only this backend knows, from --replicate_base_url and the environment.
struct ReplicateOptions {
  std::string base_url;   // "" = kReplicateDefaultBaseUrl; http:// only to loopback
  std::string api_token;  // never logged
};

// Thread-safe; its only mutable state is the generator for upload
// boundaries.
class ReplicateBackend final : public Backend {
 public:
  // options.api_token is required; config.max_image_bytes and
  // config.max_output_bytes bound the transfers. deps.http (required),
  // deps.clock and deps.rng are borrowed and must outlive the backend.
  // FAILED_PRECONDITION without a token or a transport; INVALID_ARGUMENT for
  // a base URL the URL policy refuses.
  static absl::StatusOr<std::unique_ptr<ReplicateBackend>> Create(const BackendConfig& config,
                                                                  ReplicateOptions options,
                                                                  const BackendDeps& deps);

  const Capabilities& capabilities() const override { return capabilities_; }
  // What the capabilities cannot say: a seed for a model without one, and
  // hailuo-02's 10 s only at 768p.
  absl::Status Validate(const StartRequest& request) const override;
  // Checks the request first, so nothing a model does not take is sent (and
  // billed).
  absl::StatusOr<std::string> Start(const StartRequest& request) override;
  absl::StatusOr<PollResult> Poll(absl::string_view provider_task_id) override;
  absl::Status Cancel(absl::string_view provider_task_id) override;
  // On failure the sink may hold part of the video; a retry starts over.
  absl::Status FetchOutput(absl::string_view provider_task_id,
                           const std::vector<std::string>& output_urls,
                           OutputSink& sink) override;

 private:
  ReplicateBackend(const BackendConfig& config, ReplicateOptions options, const BackendDeps& deps);

  HttpRequest ApiRequest(absl::string_view method, absl::string_view path,
                         std::string body) const;
  absl::StatusOr<std::string> StartInternal(const StartRequest& request);
  // The image input: the https:// URL, a data URI, or an uploaded file's URL.
  absl::StatusOr<std::string> ImageInput(const StartRequest& request);
  absl::StatusOr<std::string> Upload(const StartRequest& request);
  // A multipart boundary that does not occur in `content`.
  std::string NewBoundary(absl::string_view content) ABSL_LOCKS_EXCLUDED(rng_mu_);
  absl::StatusOr<PollResult> PollInternal(absl::string_view provider_task_id);
  // Output URLs of a succeeded prediction, asked for again.
  absl::StatusOr<std::vector<std::string>> FreshOutputUrls(absl::string_view provider_task_id);
  // Fetches one URL into the sink. *retry_with_fresh_url is set when the
  // URL looks expired (401/403/404/410).
  absl::Status Download(const std::string& url, OutputSink& sink, bool* retry_with_fresh_url);
  // Last line of defence: the token never leaves in a status.
  absl::Status Scrub(absl::Status status) const;

  const BackendConfig config_;
  const ReplicateOptions options_;  // base_url without a trailing '/'
  HttpTransport* const http_;
  const Clock& clock_;
  const Capabilities capabilities_;
  absl::Mutex rng_mu_;
  absl::BitGenRef rng_ ABSL_GUARDED_BY(rng_mu_);
};

// A setup that builds a ReplicateBackend with `options` (tests use it to
// point the backend at a fake).
BackendSetup ReplicateSetup(BackendConfig config, ReplicateOptions options);

// "replicate": its flags (--replicate_*), its secret (REPLICATE_API_TOKEN),
// on by default when the secret is set. Defined with the flags in
// replicate_descriptor.cc.
BackendDescriptor ReplicateDescriptor();

}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_REPLICATE_REPLICATE_BACKEND_H_
