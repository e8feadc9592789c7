// The curated fal.ai image-to-video models: what each accepts (ratios,
// durations, prompt, options) and how a task maps to its own input names.
#ifndef VIDEOTASK_BACKENDS_FAL_FAL_MODELS_H_
#define VIDEOTASK_BACKENDS_FAL_FAL_MODELS_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/api/backend.h"
#include "backends/api/capabilities.h"

namespace videotask::backends {

inline constexpr char kFalKling21Standard[] = "fal-ai/kling-video/v2.1/standard/image-to-video";
inline constexpr char kFalHailuo02Standard[] = "fal-ai/minimax/hailuo-02/standard/image-to-video";
inline constexpr char kFalVeo31Fast[] = "fal-ai/veo3.1/fast/image-to-video";

// The ratio of models whose video follows the image's own aspect.
inline constexpr char kFalRatioAuto[] = "auto";

// The capability table; `max_image_bytes` is the server's image limit
// (larger images than a data URI carries go through fal's storage upload).
Capabilities FalCapabilities(int64_t max_image_bytes);

namespace fal_internal {

// What fal-specific rules a resolved request must meet beyond the
// capabilities: seed only where the model takes one, an https:// URL in
// URL-typed options.
absl::Status CheckFalRequest(const Capabilities& caps, const StartRequest& request);

// The JSON input of POST {base}/{model}: the task's fields under the
// model's own names, options typed by their declaration. `image_url` is an
// https:// URL or a data URI.
absl::StatusOr<nlohmann::json> CreateBody(const ModelCapabilities& model,
                                          const StartRequest& request,
                                          const ResolvedOptions& resolved,
                                          const std::string& image_url);

}  // namespace fal_internal
}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_FAL_FAL_MODELS_H_
