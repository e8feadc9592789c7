#include "server/domain/task.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace videotask {

bool IsTerminal(TaskState state) {
  switch (state) {
    case TaskState::kSucceeded:
    case TaskState::kFailed:
    case TaskState::kCancelled:
      return true;
    case TaskState::kQueued:
    case TaskState::kSubmitting:
    case TaskState::kRunning:
    case TaskState::kDownloading:
      return false;
  }
  return false;
}

absl::string_view TaskStateName(TaskState state) {
  switch (state) {
    case TaskState::kQueued:
      return "QUEUED";
    case TaskState::kSubmitting:
      return "SUBMITTING";
    case TaskState::kRunning:
      return "RUNNING";
    case TaskState::kDownloading:
      return "DOWNLOADING";
    case TaskState::kSucceeded:
      return "SUCCEEDED";
    case TaskState::kFailed:
      return "FAILED";
    case TaskState::kCancelled:
      return "CANCELLED";
  }
  return "STATE_UNSPECIFIED";
}

std::optional<TaskState> TaskStateFromInt(int value) {
  if (value < 1 || value > 7) return std::nullopt;
  return static_cast<TaskState>(value);
}

TaskAttempt CurrentTry(const Task& task) {
  TaskAttempt attempt;
  attempt.provider_task_id = task.provider_task_id;
  attempt.start_time = task.start_time;
  attempt.end_time = task.end_time;
  attempt.state = task.state;
  attempt.error = task.error;
  return attempt;
}

std::string SpecFingerprint(const TaskSpec& spec, absl::string_view image_sha256) {
  // Length-prefixed fields, so no two specs serialize alike.
  std::string canonical;
  auto add = [&canonical](absl::string_view field) {
    absl::StrAppend(&canonical, field.size(), ":", field, ";");
  };
  add(spec.backend);
  add(spec.model);
  add(absl::StrCat(static_cast<int>(spec.image.source)));
  add(spec.image.uri);
  add(spec.image.server_path);
  add(spec.image.filename);
  add(spec.image.mime_type);
  add(image_sha256);
  add(spec.prompt_text);
  add(spec.ratio);
  add(absl::StrCat(spec.duration_seconds));
  add(spec.seed.has_value() ? absl::StrCat(*spec.seed) : "-");
  add(spec.target_filename_stub);
  add(absl::StrCat(spec.labels.size()));
  for (const auto& [key, value] : spec.labels) {
    add(key);
    add(value);
  }
  add(absl::StrCat(spec.priority));
  add(spec.public_figure_threshold);
  // Only when set: fingerprints of specs without options stay as they were.
  if (!spec.model_options.empty()) {
    add(absl::StrCat("model_options ", spec.model_options.size()));
    for (const auto& [key, value] : spec.model_options) {
      add(key);
      add(value);
    }
  }
  if (!spec.notify_url.empty() || !spec.notify_events.empty()) {
    add(absl::StrCat("notify ", spec.notify_events.size()));
    add(spec.notify_url);
    for (const std::string& event : spec.notify_events) add(event);
  }
  return Sha256Hex(canonical);
}

}  // namespace videotask
