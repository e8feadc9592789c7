// Human tables and machine JSON for the CLI's output.
#ifndef VIDEOTASK_CLIENT_CLI_OUTPUT_H_
#define VIDEOTASK_CLIENT_CLI_OUTPUT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <google/protobuf/message.h>
#include <nlohmann/json.hpp>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "videotask/v1/video_task_service.pb.h"

namespace videotask::cli {

// "QUEUED", "SUCCEEDED", ...
std::string StateName(v1::State state);
// Case-insensitive; accepts "succeeded" and "SUCCEEDED". nullopt if unknown.
std::optional<v1::State> ParseState(absl::string_view name);
// Comma-separated list of the state names a user may give.
std::string StateNames();
bool IsTerminal(v1::State state);

// A message in protobuf's JSON mapping (proto field names, defaults printed)
// as a JSON value, ready to combine with other values.
nlohmann::ordered_json ProtoToJson(const google::protobuf::Message& message);
// One line of JSON.
std::string JsonLine(const nlohmann::ordered_json& value);

// Left-aligned columns separated by two spaces; the header row first.
class Table {
 public:
  explicit Table(std::vector<std::string> header);
  void AddRow(std::vector<std::string> row);
  std::string Render() const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// "42s", "5m", "3h", "2d".
std::string FormatAge(absl::Duration age);
// "1.2 MiB".
std::string FormatBytes(int64_t bytes);
// "[#########-----------]" for progress 0..1 over `width` cells.
std::string ProgressBar(float progress, int width);
// "42%".
std::string Percent(float progress);
// Cuts `text` to at most `max` characters, ending in "..." when cut; newlines
// become spaces.
std::string Abbreviate(absl::string_view text, size_t max);
// "CODE: message" of a task's error, or "" when it has none.
std::string TaskErrorText(const v1::Task& task);

// A task's human summary (for `get`): one "key: value" line each.
std::string DescribeTask(const v1::Task& task, absl::Time now);

}  // namespace videotask::cli

#endif  // VIDEOTASK_CLIENT_CLI_OUTPUT_H_
