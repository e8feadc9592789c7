#include "backends/api/capabilities.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/api/backend.h"
#include "common/text.h"

namespace videotask::backends {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, " ", what));
}

// "2..10" for consecutive values, else "4, 6, 8".
std::string DescribeDurations(const std::vector<int>& durations) {
  if (durations.empty()) return "none";
  bool consecutive = true;
  for (size_t i = 1; i < durations.size(); ++i) {
    consecutive = consecutive && durations[i] == durations[i - 1] + 1;
  }
  if (consecutive && durations.size() > 2) {
    return absl::StrCat(durations.front(), "..", durations.back());
  }
  return absl::StrJoin(durations, ", ");
}

bool Contains(const std::vector<std::string>& list, absl::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

std::string OptionField(absl::string_view key) {
  return absl::StrCat("spec.model_options[", QuotedForError(key), "]");
}

// What an option takes, for errors: "a number in 0..1", "one of: a, b".
std::string DescribeOption(const ModelOption& option) {
  switch (option.type) {
    case ModelOption::Type::kEnum:
      return absl::StrCat("one of: ", absl::StrJoin(option.values, ", "));
    case ModelOption::Type::kBoolean:
      return "true or false";
    case ModelOption::Type::kInteger:
    case ModelOption::Type::kNumber: {
      std::string kind = option.type == ModelOption::Type::kInteger ? "a whole number" : "a number";
      if (option.min == 0 && option.max == 0) return kind;
      return absl::StrCat(kind, " in ", option.min, "..", option.max);
    }
    case ModelOption::Type::kString:
      break;
  }
  return absl::StrCat("text of at most ",
                      option.max_length > 0 ? option.max_length : kMaxOptionLength, " bytes");
}

bool OptionValueFits(const ModelOption& option, absl::string_view value) {
  switch (option.type) {
    case ModelOption::Type::kEnum:
      return Contains(option.values, value);
    case ModelOption::Type::kBoolean:
      return value == "true" || value == "false";
    case ModelOption::Type::kInteger: {
      int64_t n = 0;
      if (!absl::SimpleAtoi(value, &n)) return false;
      return (option.min == 0 && option.max == 0) ||
             (static_cast<double>(n) >= option.min && static_cast<double>(n) <= option.max);
    }
    case ModelOption::Type::kNumber: {
      double x = 0;
      if (!absl::SimpleAtod(value, &x) || !std::isfinite(x)) return false;
      return (option.min == 0 && option.max == 0) || (x >= option.min && x <= option.max);
    }
    case ModelOption::Type::kString:
      break;
  }
  const size_t limit = option.max_length > 0 ? option.max_length : kMaxOptionLength;
  return value.size() <= limit && Utf16Length(value).has_value();
}

}  // namespace

absl::string_view OptionTypeName(ModelOption::Type type) {
  switch (type) {
    case ModelOption::Type::kString: return "string";
    case ModelOption::Type::kInteger: return "integer";
    case ModelOption::Type::kNumber: return "number";
    case ModelOption::Type::kBoolean: return "boolean";
    case ModelOption::Type::kEnum: return "enum";
  }
  return "string";
}

absl::Status CheckModelOptions(const ModelCapabilities& model,
                               const std::map<std::string, std::string>& options) {
  if (static_cast<int>(options.size()) > kMaxModelOptions) {
    return Invalid("spec.model_options", absl::StrCat("has ", options.size(),
                                                      " keys; allowed: at most ", kMaxModelOptions));
  }
  for (const auto& [key, value] : options) {
    const ModelOption* option = model.FindOption(key);
    if (option == nullptr) {
      std::vector<std::string> names;
      for (const ModelOption& o : model.options) names.push_back(o.name);
      return Invalid("spec.model_options",
                     absl::StrCat("has key ", QuotedForError(key), ", which model ", model.name,
                                  " does not take; allowed: ",
                                  names.empty() ? "none" : absl::StrJoin(names, ", ")));
    }
    if (!OptionValueFits(*option, value)) {
      return Invalid(OptionField(key), absl::StrCat(QuotedForError(value), " is not allowed for model ",
                                                    model.name, "; allowed: ",
                                                    DescribeOption(*option)));
    }
  }
  return absl::OkStatus();
}

bool IsHttpsImageUri(absl::string_view uri) {
  return absl::StartsWith(uri, "https://") && uri.size() >= 13 && uri.size() <= kMaxImageUri &&
         std::none_of(uri.begin(), uri.end(),
                      [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; });
}

absl::StatusOr<const ModelCapabilities*> ResolveModel(const Capabilities& caps,
                                                      absl::string_view backend,
                                                      absl::string_view model) {
  const ModelCapabilities* found =
      caps.FindModel(std::string(model.empty() ? caps.default_model : model));
  if (found != nullptr) return found;
  std::vector<std::string> names;
  for (const ModelCapabilities& m : caps.models) names.push_back(m.name);
  return Invalid("spec.model", absl::StrCat(QuotedForError(model), " is not offered by backend ",
                                            backend, "; allowed: ", absl::StrJoin(names, ", ")));
}

absl::Status CheckImageUriAccepted(const Capabilities& caps, absl::string_view backend) {
  if (caps.accepts_https_uri) return absl::OkStatus();
  return Invalid("spec.image.uri", absl::StrCat("https:// images are not accepted by backend ",
                                                backend, "; send the bytes in spec.image.content"));
}

absl::Status CheckImageType(const Capabilities& caps, absl::string_view backend,
                            absl::string_view field, absl::string_view mime_type) {
  if (Contains(caps.image_mime_types, mime_type)) return absl::OkStatus();
  return Invalid(field, absl::StrCat("is ", mime_type, ", which backend ", backend,
                                     " does not take; allowed: ",
                                     absl::StrJoin(caps.image_mime_types, ", ")));
}

absl::Status CheckDeclaredImageType(const Capabilities& caps, absl::string_view declared) {
  if (Contains(caps.image_mime_types, absl::AsciiStrToLower(declared))) return absl::OkStatus();
  return Invalid("spec.image.mime_type",
                 absl::StrCat("is ", QuotedForError(declared), "; allowed: ",
                              absl::StrJoin(caps.image_mime_types, ", ")));
}

int64_t ImageByteLimit(const Capabilities& caps, int64_t server_limit) {
  return caps.max_image_bytes > 0 ? std::min(server_limit, caps.max_image_bytes) : server_limit;
}

absl::Status CheckImageSize(absl::string_view field, int64_t size, int64_t limit) {
  if (size == 0) return Invalid(field, "is empty");
  if (size <= limit) return absl::OkStatus();
  return Invalid(field, absl::StrCat("has ", size, " bytes; the limit is ", limit));
}

absl::Status CheckPrompt(const ModelCapabilities& model, absl::string_view prompt) {
  if (prompt.empty()) {
    if (!model.prompt_required) return absl::OkStatus();
    return Invalid("spec.prompt_text",
                   absl::StrCat("is required by model ", model.name, " (1..",
                                model.max_prompt_utf16, " UTF-16 code units)"));
  }
  std::optional<int64_t> units = Utf16Length(prompt);
  if (!units.has_value()) return Invalid("spec.prompt_text", "is not valid UTF-8");
  if (model.max_prompt_utf16 == 0) {
    return Invalid("spec.prompt_text",
                   absl::StrCat("is not taken by model ", model.name, "; leave it empty"));
  }
  if (*units > model.max_prompt_utf16) {
    return Invalid("spec.prompt_text",
                   absl::StrCat("has ", *units, " UTF-16 code units; model ", model.name,
                                " takes 1..", model.max_prompt_utf16));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ResolveRatio(const ModelCapabilities& model, absl::string_view ratio) {
  if (ratio.empty()) return model.default_ratio;
  if (auto alias = model.ratio_aliases.find(std::string(ratio));
      alias != model.ratio_aliases.end()) {
    return alias->second;
  }
  if (Contains(model.ratios, ratio)) return std::string(ratio);
  std::vector<std::string> aliases;
  for (const auto& [a, r] : model.ratio_aliases) aliases.push_back(absl::StrCat(a, "=", r));
  return Invalid("spec.ratio",
                 absl::StrCat(QuotedForError(ratio), " is not offered by model ", model.name,
                              "; allowed: ", absl::StrJoin(model.ratios, ", "),
                              aliases.empty()
                                  ? ""
                                  : absl::StrCat(" or an alias: ", absl::StrJoin(aliases, ", "))));
}

absl::StatusOr<int> ResolveDuration(const ModelCapabilities& model, int seconds) {
  if (seconds == 0) return model.default_duration_seconds;
  if (std::find(model.durations.begin(), model.durations.end(), seconds) !=
      model.durations.end()) {
    return seconds;
  }
  return Invalid("spec.duration_seconds",
                 absl::StrCat(seconds, " is not offered by model ", model.name, "; allowed: ",
                              DescribeDurations(model.durations), " (0 = default ",
                              model.default_duration_seconds, ")"));
}

absl::Status CheckPublicFigureThreshold(const Capabilities& caps, absl::string_view backend,
                                        absl::string_view threshold) {
  if (threshold.empty() || Contains(caps.public_figure_thresholds, threshold)) {
    return absl::OkStatus();
  }
  if (caps.public_figure_thresholds.empty()) {
    return Invalid("spec.public_figure_threshold",
                   absl::StrCat("is not taken by backend ", backend, "; leave it empty"));
  }
  return Invalid("spec.public_figure_threshold",
                 absl::StrCat(QuotedForError(threshold), "; allowed: ",
                              absl::StrJoin(caps.public_figure_thresholds, ", "), " (or empty)"));
}

absl::StatusOr<ResolvedOptions> ResolveAgainstCapabilities(const Capabilities& caps,
                                                           absl::string_view backend,
                                                           const StartRequest& request) {
  absl::StatusOr<const ModelCapabilities*> model = ResolveModel(caps, backend, request.model);
  if (!model.ok()) return model.status();
  const bool has_bytes = !request.image_bytes.empty();
  const bool has_uri = !request.image_uri.empty();
  if (has_bytes == has_uri) {
    return Invalid("spec.image", "needs exactly one source: image bytes or an https:// URL");
  }
  absl::Status image = absl::OkStatus();
  if (has_uri) {
    if (!IsHttpsImageUri(request.image_uri)) {
      return Invalid("spec.image.uri",
                     absl::StrCat("must be an https:// URL of 13..", kMaxImageUri,
                                  " characters without spaces"));
    }
    image = CheckImageUriAccepted(caps, backend);
  } else {
    image = CheckImageType(caps, backend, "spec.image.content", request.image_mime_type);
    if (image.ok() && caps.max_image_bytes > 0) {
      image = CheckImageSize("spec.image.content", static_cast<int64_t>(request.image_bytes.size()),
                             caps.max_image_bytes);
    }
  }
  if (!image.ok()) return image;
  if (absl::Status prompt = CheckPrompt(**model, request.prompt_text); !prompt.ok()) return prompt;
  ResolvedOptions resolved;
  resolved.model = (*model)->name;
  absl::StatusOr<std::string> ratio = ResolveRatio(**model, request.ratio);
  if (!ratio.ok()) return ratio.status();
  resolved.ratio = *std::move(ratio);
  absl::StatusOr<int> duration = ResolveDuration(**model, request.duration_seconds);
  if (!duration.ok()) return duration.status();
  resolved.duration_seconds = *duration;
  if (absl::Status threshold =
          CheckPublicFigureThreshold(caps, backend, request.public_figure_threshold);
      !threshold.ok()) {
    return threshold;
  }
  if (absl::Status options = CheckModelOptions(**model, request.model_options); !options.ok()) {
    return options;
  }
  return resolved;
}

}  // namespace videotask::backends
