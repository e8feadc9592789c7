// What a backend and its models accept; drives validation and ListBackends.
#ifndef VIDEOTASK_BACKENDS_API_CAPABILITIES_H_
#define VIDEOTASK_BACKENDS_API_CAPABILITIES_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace videotask::backends {

// One model input with no TaskSpec field of its own, set through
// spec.model_options under the provider's own input name.
struct ModelOption {
  enum class Type { kString, kInteger, kNumber, kBoolean, kEnum };
  std::string name;  // "negative_prompt", "cfg_scale", ...
  Type type = Type::kString;
  std::string description;
  std::vector<std::string> values;  // kEnum: the allowed values
  double min = 0, max = 0;          // kInteger, kNumber: inclusive range; both 0 = any
  size_t max_length = 0;            // kString: most bytes; 0 = kMaxOptionLength
};

inline constexpr size_t kMaxOptionLength = 2000;
inline constexpr int kMaxModelOptions = 32;

// "string", "integer", "number", "boolean" or "enum".
absl::string_view OptionTypeName(ModelOption::Type type);

struct ModelCapabilities {
  std::string name;
  std::vector<std::string> ratios;                 // pixel ratios, "1280:720"
  std::map<std::string, std::string> ratio_aliases;  // "16:9" -> "1280:720"
  std::string default_ratio;
  std::vector<int> durations;  // allowed whole seconds, ascending
  int default_duration_seconds = 0;
  int max_prompt_utf16 = 0;  // 0: the model takes no prompt
  bool prompt_required = false;
  double credits_per_second = 0;  // informational; 0 = unknown
  // Estimated price in USD per second of output, from the provider's price
  // list (where a price depends on options, the highest); a task's
  // estimated cost is this x its duration, counted against daily budgets.
  // 0 = unknown: such tasks cost nothing against a budget.
  double usd_per_second = 0;
  std::vector<ModelOption> options;  // what spec.model_options takes

  // nullptr when the model has no such option.
  const ModelOption* FindOption(absl::string_view name) const {
    for (const ModelOption& o : options) {
      if (o.name == name) return &o;
    }
    return nullptr;
  }
};

struct Capabilities {
  std::string default_model;
  std::vector<ModelCapabilities> models;
  int64_t max_image_bytes = 0;
  std::vector<std::string> image_mime_types;  // "image/png", ...
  bool accepts_https_uri = true;  // the provider fetches https:// images itself
  // Values of spec.public_figure_threshold it takes besides "" (the
  // provider's default); none = the option is not offered.
  std::vector<std::string> public_figure_thresholds;

  // nullptr when the backend has no such model.
  const ModelCapabilities* FindModel(const std::string& name) const {
    for (const ModelCapabilities& m : models) {
      if (m.name == name) return &m;
    }
    return nullptr;
  }
};

// The six pixel ratios of RunwayML's gen4 family and their aspect aliases.
inline std::map<std::string, std::string> Gen4RatioAliases() {
  return {{"16:9", "1280:720"}, {"9:16", "720:1280"}, {"4:3", "1104:832"},
          {"3:4", "832:1104"},  {"1:1", "960:960"},   {"21:9", "1584:672"}};
}
inline std::vector<std::string> Gen4Ratios() {
  return {"1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672"};
}

// The capability checks, written once for every backend. The API runs them
// field by field while it validates a submit; a backend may run them all on
// what it is given (ResolveAgainstCapabilities). Errors are INVALID_ARGUMENT
// whose message starts with the field path ("spec.ratio ..."); callers add
// their own prefix ("requests[3].").

inline constexpr size_t kMaxImageUri = 2048;
// An https:// URL of 13..kMaxImageUri characters without spaces or control
// characters: the only image URL a provider is given.
bool IsHttpsImageUri(absl::string_view uri);

// The model named (or the default for ""), or an error listing the models.
absl::StatusOr<const ModelCapabilities*> ResolveModel(const Capabilities& caps,
                                                      absl::string_view backend,
                                                      absl::string_view model);
// An https:// image, when the backend does not fetch URLs itself.
absl::Status CheckImageUriAccepted(const Capabilities& caps, absl::string_view backend);
// The type sniffed from image bytes sent in `field`.
absl::Status CheckImageType(const Capabilities& caps, absl::string_view backend,
                            absl::string_view field, absl::string_view mime_type);
// The type declared for an https:// image (any case).
absl::Status CheckDeclaredImageType(const Capabilities& caps, absl::string_view declared);
// The image bytes limit: the smaller of the server's and the backend's.
int64_t ImageByteLimit(const Capabilities& caps, int64_t server_limit);
absl::Status CheckImageSize(absl::string_view field, int64_t size, int64_t limit);
absl::Status CheckPrompt(const ModelCapabilities& model, absl::string_view prompt);
// "" = the model's default ratio; an alias resolves to its pixel ratio.
absl::StatusOr<std::string> ResolveRatio(const ModelCapabilities& model, absl::string_view ratio);
// 0 = the model's default duration.
absl::StatusOr<int> ResolveDuration(const ModelCapabilities& model, int seconds);
absl::Status CheckPublicFigureThreshold(const Capabilities& caps, absl::string_view backend,
                                        absl::string_view threshold);
// Every key of `options` is one of the model's options and its value fits
// the option's type; the error names the key and what is allowed.
absl::Status CheckModelOptions(const ModelCapabilities& model,
                               const std::map<std::string, std::string>& options);

struct StartRequest;
// What ResolveAgainstCapabilities fills in.
struct ResolvedOptions {
  std::string model;
  std::string ratio;
  int duration_seconds = 0;
};
// Every check above on one provider request (model, image, prompt, ratio,
// duration, moderation, model options), with defaults and aliases resolved.
absl::StatusOr<ResolvedOptions> ResolveAgainstCapabilities(const Capabilities& caps,
                                                           absl::string_view backend,
                                                           const StartRequest& request);

}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_API_CAPABILITIES_H_
