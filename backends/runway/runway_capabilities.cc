// What the current RunwayML image-to-video models accept
// (shared/reference/runway-api.md).
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backends/runway/runway_backend.h"

namespace videotask::backends {
namespace {

// 1 credit = $0.01 (the API's own description).
constexpr double kUsdPerRunwayCredit = 0.01;

ModelCapabilities Model(std::string name, std::vector<std::string> ratios,
                        std::map<std::string, std::string> aliases, std::vector<int> durations,
                        int default_duration, bool prompt_required, double credits) {
  ModelCapabilities m;
  m.name = std::move(name);
  m.default_ratio = ratios.front();
  m.ratios = std::move(ratios);
  m.ratio_aliases = std::move(aliases);
  m.durations = std::move(durations);
  m.default_duration_seconds = default_duration;
  m.max_prompt_utf16 = 1000;
  m.prompt_required = prompt_required;
  m.credits_per_second = credits;
  m.usd_per_second = credits * kUsdPerRunwayCredit;
  return m;
}

std::vector<int> Range(int from, int to) {
  std::vector<int> out;
  for (int i = from; i <= to; ++i) out.push_back(i);
  return out;
}
}  // namespace

Capabilities RunwayCapabilities(int64_t max_image_bytes) {
  const std::vector<std::string> veo_ratios = {"1280:720", "720:1280", "1080:1920", "1920:1080"};
  const std::map<std::string, std::string> veo_aliases = {{"16:9", "1280:720"},
                                                          {"9:16", "720:1280"}};
  Capabilities caps;
  caps.default_model = "gen4_turbo";
  caps.models.push_back(Model("gen4_turbo", Gen4Ratios(), Gen4RatioAliases(), Range(2, 10), 4,
                              /*prompt_required=*/false, 5));
  caps.models.push_back(Model("gen4.5", Gen4Ratios(), Gen4RatioAliases(), Range(2, 10), 4,
                              /*prompt_required=*/true, 12));
  caps.models.push_back(
      Model("veo3.1", veo_ratios, veo_aliases, {4, 6, 8}, 8, /*prompt_required=*/false, 40));
  caps.models.push_back(
      Model("veo3.1_fast", veo_ratios, veo_aliases, {4, 6, 8}, 8, /*prompt_required=*/false, 15));
  caps.models.push_back(
      Model("veo3", veo_ratios, veo_aliases, {8}, 8, /*prompt_required=*/false, 40));
  // No published price for gemini_omni_flash: 0 (unknown).
  caps.models.push_back(Model("gemini_omni_flash", {"1280:720", "720:1280"}, veo_aliases,
                              Range(3, 10), 4, /*prompt_required=*/false, 0));
  caps.max_image_bytes = max_image_bytes;
  caps.image_mime_types = {"image/png", "image/jpeg", "image/webp"};
  caps.accepts_https_uri = true;
  caps.public_figure_thresholds = {"auto", "low"};
  return caps;
}

}  // namespace videotask::backends
