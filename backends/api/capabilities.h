// What a backend and its models accept; drives validation and ListBackends.
#ifndef VIDEOTASK_BACKENDS_API_CAPABILITIES_H_
#define VIDEOTASK_BACKENDS_API_CAPABILITIES_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace videotask::backends {

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
};

struct Capabilities {
  std::string default_model;
  std::vector<ModelCapabilities> models;
  int64_t max_image_bytes = 0;
  std::vector<std::string> image_mime_types;  // "image/png", ...
  bool accepts_https_uri = true;  // the provider fetches https:// images itself

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

}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_API_CAPABILITIES_H_
