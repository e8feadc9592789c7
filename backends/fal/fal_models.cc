// The curated fal.ai models (shared/reference/fal-api.md §7). Enum values
// are JSON strings there, durations too ("5", "6", "8s").
#include "backends/fal/fal_models.h"

#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace videotask::backends {
namespace {

using Type = ModelOption::Type;

// How one model names the task's fields.
struct ModelWire {
  std::string duration_suffix;  // "5" + suffix: "" or "s"
  bool sends_aspect_ratio = false;
  bool takes_seed = false;
};

const std::map<std::string, ModelWire>& Wires() {
  static const auto* wires = new std::map<std::string, ModelWire>{
      {kFalKling21Standard, {"", false, false}},
      {kFalHailuo02Standard, {"", false, false}},
      {kFalVeo31Fast, {"s", true, true}},
  };
  return *wires;
}

ModelOption Option(std::string name, Type type, std::string description) {
  ModelOption o;
  o.name = std::move(name);
  o.type = type;
  o.description = std::move(description);
  return o;
}

ModelOption Enum(std::string name, std::vector<std::string> values, std::string description) {
  ModelOption o = Option(std::move(name), Type::kEnum, std::move(description));
  o.values = std::move(values);
  return o;
}

ModelOption Text(std::string name, size_t max_length, std::string description) {
  ModelOption o = Option(std::move(name), Type::kString, std::move(description));
  o.max_length = max_length;
  return o;
}

ModelCapabilities Model(std::string name, std::vector<std::string> ratios,
                        std::map<std::string, std::string> aliases, std::vector<int> durations,
                        int default_duration, int max_prompt, double per_second) {
  ModelCapabilities m;
  m.name = std::move(name);
  m.default_ratio = ratios.front();
  m.ratios = std::move(ratios);
  m.ratio_aliases = std::move(aliases);
  m.durations = std::move(durations);
  m.default_duration_seconds = default_duration;
  m.max_prompt_utf16 = max_prompt;
  m.prompt_required = true;
  m.credits_per_second = per_second;  // USD per second of video, informational
  m.usd_per_second = per_second;
  return m;
}

ModelCapabilities Kling() {
  ModelCapabilities m = Model(kFalKling21Standard, {kFalRatioAuto}, {}, {5, 10}, 5, 2500, 0.056);
  m.options = {
      Text("negative_prompt", 2500, "what to avoid (default: blur, distort, and low quality)"),
      Option("cfg_scale", Type::kNumber, "how closely to follow the prompt, 0..1 (default 0.5)")};
  m.options.back().min = 0;
  m.options.back().max = 1;
  return m;
}

ModelCapabilities Hailuo() {
  ModelCapabilities m = Model(kFalHailuo02Standard, {kFalRatioAuto}, {}, {6, 10}, 6, 2000, 0.045);
  m.options = {
      Enum("resolution", {"512P", "768P"}, "output resolution (default 768P)"),
      Option("prompt_optimizer", Type::kBoolean, "let the model rewrite the prompt (default true)"),
      Text("end_image_url", kMaxImageUri, "https:// URL of an image for the last frame")};
  return m;
}

ModelCapabilities Veo() {
  ModelCapabilities m =
      Model(kFalVeo31Fast, {kFalRatioAuto, "16:9", "9:16"},
            {{"1280:720", "16:9"}, {"720:1280", "9:16"}}, {4, 6, 8}, 8, 2000, 0.15);
  m.options = {Enum("resolution", {"720p", "1080p", "4k"}, "output resolution (default 720p)"),
               Option("generate_audio", Type::kBoolean, "generate an audio track (default true)"),
               Text("negative_prompt", 2500, "what to avoid"),
               Option("auto_fix", Type::kBoolean, "rewrite prompts that fail the content policy"),
               Enum("safety_tolerance", {"1", "2", "3", "4", "5", "6"},
                    "moderation strictness, 1 strictest (default 4)")};
  return m;
}

}  // namespace

Capabilities FalCapabilities(int64_t max_image_bytes) {
  Capabilities caps;
  caps.default_model = kFalKling21Standard;
  caps.models = {Kling(), Hailuo(), Veo()};
  caps.max_image_bytes = max_image_bytes;
  caps.image_mime_types = {"image/png", "image/jpeg", "image/webp"};
  caps.accepts_https_uri = true;
  return caps;
}

namespace fal_internal {

absl::Status CheckFalRequest(const Capabilities& caps, const StartRequest& request) {
  const std::string model = request.model.empty() ? caps.default_model : request.model;
  auto wire = Wires().find(model);
  if (wire == Wires().end()) return absl::OkStatus();  // the capability checks name it
  if (request.seed.has_value() && !wire->second.takes_seed) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.seed is not taken by model ", model, "; leave it unset"));
  }
  auto end_image = request.model_options.find("end_image_url");
  if (end_image != request.model_options.end() && !IsHttpsImageUri(end_image->second)) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.model_options.end_image_url must be an https:// URL of 13..",
                     kMaxImageUri, " characters without spaces"));
  }
  return absl::OkStatus();
}

namespace {

// An option's text as the JSON type its declaration names.
absl::StatusOr<nlohmann::json> OptionValue(const ModelOption& option, const std::string& text) {
  const std::string field = absl::StrCat("spec.model_options.", option.name);
  switch (option.type) {
    case Type::kString:
    case Type::kEnum:
      return nlohmann::json(text);
    case Type::kInteger: {
      int64_t value = 0;
      if (!absl::SimpleAtoi(text, &value)) {
        return absl::InvalidArgumentError(absl::StrCat(field, " must be an integer"));
      }
      return nlohmann::json(value);
    }
    case Type::kNumber: {
      double value = 0;
      if (!absl::SimpleAtod(text, &value) || !std::isfinite(value)) {
        return absl::InvalidArgumentError(absl::StrCat(field, " must be a number"));
      }
      return nlohmann::json(value);
    }
    case Type::kBoolean: {
      bool value = false;
      if (!absl::SimpleAtob(text, &value)) {
        return absl::InvalidArgumentError(absl::StrCat(field, " must be true or false"));
      }
      return nlohmann::json(value);
    }
  }
  return absl::InternalError(absl::StrCat(field, ": unknown option type"));
}

}  // namespace

absl::StatusOr<nlohmann::json> CreateBody(const ModelCapabilities& model,
                                          const StartRequest& request,
                                          const ResolvedOptions& resolved,
                                          const std::string& image_url) {
  auto wire = Wires().find(model.name);
  if (wire == Wires().end()) {
    return absl::InternalError(absl::StrCat("fal: no input mapping for model ", model.name));
  }
  nlohmann::json body = nlohmann::json::object();
  body["prompt"] = request.prompt_text;
  body["image_url"] = image_url;
  body["duration"] = absl::StrCat(resolved.duration_seconds, wire->second.duration_suffix);
  if (wire->second.sends_aspect_ratio) body["aspect_ratio"] = resolved.ratio;
  if (wire->second.takes_seed && request.seed.has_value()) body["seed"] = *request.seed;
  for (const auto& [name, text] : request.model_options) {
    const ModelOption* option = model.FindOption(name);
    if (option == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("spec.model_options: ", name, " is not an option of model ", model.name));
    }
    absl::StatusOr<nlohmann::json> value = OptionValue(*option, text);
    if (!value.ok()) return value.status();
    body[name] = *std::move(value);
  }
  return body;
}

}  // namespace fal_internal
}  // namespace videotask::backends
