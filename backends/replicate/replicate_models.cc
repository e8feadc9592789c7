// What the curated Replicate image-to-video models accept
// (shared/reference/replicate-api.md, section 9). Where the digest marks a
// value unverified, only the confirmed ones are declared.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backends/replicate/replicate_models.h"

namespace videotask::backends {
namespace {

// Our own bound: the models document none; Kling's own API takes 2,500.
constexpr int kMaxPrompt = 2500;

ModelOption EnumOption(std::string name, std::string description,
                       std::vector<std::string> values) {
  ModelOption o;
  o.name = std::move(name);
  o.type = ModelOption::Type::kEnum;
  o.description = std::move(description);
  o.values = std::move(values);
  return o;
}

ModelOption BoolOption(std::string name, std::string description) {
  ModelOption o;
  o.name = std::move(name);
  o.type = ModelOption::Type::kBoolean;
  o.description = std::move(description);
  return o;
}

ModelOption StringOption(std::string name, std::string description, size_t max_length) {
  ModelOption o;
  o.name = std::move(name);
  o.type = ModelOption::Type::kString;
  o.description = std::move(description);
  o.max_length = max_length;
  return o;
}

ModelCapabilities Caps(std::string name, std::vector<std::string> ratios,
                       std::map<std::string, std::string> aliases, std::vector<int> durations,
                       int default_duration, std::vector<ModelOption> options,
                       double usd_per_second) {
  ModelCapabilities m;
  m.usd_per_second = usd_per_second;
  m.name = std::move(name);
  m.default_ratio = ratios.front();
  m.ratios = std::move(ratios);
  m.ratio_aliases = std::move(aliases);
  m.durations = std::move(durations);
  m.default_duration_seconds = default_duration;
  m.max_prompt_utf16 = kMaxPrompt;
  m.prompt_required = true;
  m.options = std::move(options);
  return m;
}

// Estimated prices per second of output, the highest of each model's
// options (pro mode, 1080p, audio). Replicate bills by the model's own
// schedule; check these against its price list before relying on a budget.
constexpr double kReplicateKlingUsdPerSecond = 0.09;
constexpr double kReplicateHailuoUsdPerSecond = 0.08;
constexpr double kReplicateVeoUsdPerSecond = 0.40;

std::vector<ReplicateModel> BuildModels() {
  std::vector<ReplicateModel> models;

  ReplicateModel kling;
  kling.caps = Caps("kwaivgi/kling-v2.1", {kReplicateImageRatio}, {}, {5, 10}, 5,
                    {EnumOption("mode", "standard (720p) or pro (1080p), 24 fps; default standard",
                                {"standard", "pro"}),
                     StringOption("negative_prompt", "what the video should not show",
                                  kMaxOptionLength)},
                    kReplicateKlingUsdPerSecond);
  kling.image_input = "start_image";
  models.push_back(std::move(kling));

  ReplicateModel hailuo;
  hailuo.caps = Caps("minimax/hailuo-02", {kReplicateImageRatio}, {}, {6, 10}, 6,
                     {EnumOption("resolution",
                                 "output resolution; default 1080p; 10 s videos need 768p",
                                 {"512p", "768p", "1080p"}),
                      BoolOption("prompt_optimizer", "let the model rewrite the prompt; default true")},
                     kReplicateHailuoUsdPerSecond);
  hailuo.image_input = "first_frame_image";
  models.push_back(std::move(hailuo));

  ReplicateModel veo;
  veo.caps = Caps("google/veo-3-fast", {"16:9", "9:16"},
                  {{"1280:720", "16:9"}, {"1920:1080", "16:9"}, {"720:1280", "9:16"},
                   {"1080:1920", "9:16"}},
                  {8}, 8,
                  {EnumOption("resolution", "output resolution; default 1080p", {"720p", "1080p"}),
                   StringOption("negative_prompt", "what the video should not show",
                                kMaxOptionLength),
                   BoolOption("generate_audio", "generate a sound track; default true")},
                  kReplicateVeoUsdPerSecond);
  veo.image_input = "image";
  veo.ratio_input = "aspect_ratio";
  veo.seed_input = "seed";
  models.push_back(std::move(veo));
  return models;
}

}  // namespace

const std::vector<ReplicateModel>& ReplicateModels() {
  static const auto* models = new std::vector<ReplicateModel>(BuildModels());
  return *models;
}

const ReplicateModel* FindReplicateModel(absl::string_view name) {
  for (const ReplicateModel& m : ReplicateModels()) {
    if (m.caps.name == name) return &m;
  }
  return nullptr;
}

Capabilities ReplicateCapabilities(int64_t max_image_bytes) {
  Capabilities caps;
  caps.default_model = ReplicateModels().front().caps.name;
  for (const ReplicateModel& m : ReplicateModels()) caps.models.push_back(m.caps);
  caps.max_image_bytes = max_image_bytes;
  caps.image_mime_types = {"image/png", "image/jpeg", "image/webp"};
  caps.accepts_https_uri = true;
  return caps;
}

}  // namespace videotask::backends
