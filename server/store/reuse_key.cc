#include "server/store/reuse_key.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace videotask::store::internal {

std::string ReuseKey(const Task& task) {
  const TaskSpec& spec = task.spec;
  if (spec.image.source == ImageSource::kUri || task.image_sha256.empty()) return "";
  std::string canonical;
  auto add = [&canonical](absl::string_view field) {
    absl::StrAppend(&canonical, field.size(), ":", field, ";");
  };
  add("reuse v1");
  add(spec.backend);
  add(spec.model);
  add(task.image_sha256);
  add(spec.prompt_text);
  add(spec.ratio);
  add(absl::StrCat(spec.duration_seconds));
  add(spec.seed.has_value() ? absl::StrCat("seed ", *spec.seed) : "no seed");
  add(absl::StrCat(spec.model_options.size()));
  for (const auto& [key, value] : spec.model_options) {
    add(key);
    add(value);
  }
  return Sha256Hex(canonical);
}

}  // namespace videotask::store::internal
