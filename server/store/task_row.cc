#include "server/store/task_row.h"

#include <nlohmann/json.hpp>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace videotask::store::internal {
namespace {

std::string DumpJson(const nlohmann::json& j) {
  // Invalid UTF-8 is replaced rather than thrown on.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string TaskColumnList(absl::string_view prefix) {
  std::vector<std::string> names;
  for (const char* name : kColumnNames) names.push_back(absl::StrCat(prefix, name));
  return absl::StrJoin(names, ", ");
}

int64_t CompareMicros(absl::Time t) {
  if (t == absl::InfinitePast()) return std::numeric_limits<int64_t>::min();
  if (t == absl::InfiniteFuture()) return kFutureMicros;
  return absl::ToUnixMicros(t);
}

absl::Time TimeFromMicros(int64_t micros) {
  if (micros == kFutureMicros) return absl::InfiniteFuture();
  return absl::FromUnixMicros(micros);
}

std::optional<std::string> LabelsToJson(const std::map<std::string, std::string>& labels) {
  if (labels.empty()) return std::nullopt;
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, value] : labels) j[key] = value;
  return DumpJson(j);
}

std::optional<std::string> UrlsToJson(const std::vector<std::string>& urls) {
  if (urls.empty()) return std::nullopt;
  nlohmann::json j = nlohmann::json::array();
  for (const std::string& url : urls) j.push_back(url);
  return DumpJson(j);
}

absl::Status ParseLabels(const std::string& text, std::map<std::string, std::string>& out) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InternalError("stored labels are not a JSON object");
  }
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string()) return absl::InternalError("stored label value is not a string");
    out.emplace(key, value.get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status ParseUrls(const std::string& text, std::vector<std::string>& out) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) {
    return absl::InternalError("stored output_urls are not a JSON array");
  }
  for (const auto& value : j) {
    if (!value.is_string()) return absl::InternalError("stored output url is not a string");
    out.push_back(value.get<std::string>());
  }
  return absl::OkStatus();
}

}  // namespace videotask::store::internal
