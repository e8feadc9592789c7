// The curated Replicate image-to-video models: what each accepts (as
// ModelCapabilities, options included) and the input names it takes the
// task's fields under (shared/reference/replicate-api.md, section 9).
#ifndef VIDEOTASK_BACKENDS_REPLICATE_REPLICATE_MODELS_H_
#define VIDEOTASK_BACKENDS_REPLICATE_REPLICATE_MODELS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "backends/api/capabilities.h"

namespace videotask::backends {

// Ratio of models without a ratio input: the video keeps the image's aspect.
inline constexpr char kReplicateImageRatio[] = "auto";

struct ReplicateModel {
  ModelCapabilities caps;     // caps.name is the Replicate path, "owner/name"
  std::string image_input;    // "start_image", "first_frame_image", "image"
  std::string ratio_input;    // "" = the model takes no ratio (kReplicateImageRatio)
  std::string seed_input;     // "" = the model takes no seed
  std::string duration_input = "duration";
  std::string prompt_input = "prompt";
};

// The curated models, default first.
const std::vector<ReplicateModel>& ReplicateModels();
// nullptr for a model not in the curated set.
const ReplicateModel* FindReplicateModel(absl::string_view name);
// The capability table of the curated models.
Capabilities ReplicateCapabilities(int64_t max_image_bytes);

}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_REPLICATE_REPLICATE_MODELS_H_
