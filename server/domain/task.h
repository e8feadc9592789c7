// The domain model of a task, shared by the store, the engine and the API
// mapping. Plain structs: no proto, no gRPC.
#ifndef VIDEOTASK_SERVER_DOMAIN_TASK_H_
#define VIDEOTASK_SERVER_DOMAIN_TASK_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace videotask {

// Numbers match the proto enum and the SQL CHECK constraint.
enum class TaskState : int {
  kQueued = 1,
  kSubmitting = 2,
  kRunning = 3,
  kDownloading = 4,
  kSucceeded = 5,
  kFailed = 6,
  kCancelled = 7,
};

bool IsTerminal(TaskState state);
// "QUEUED", "SUBMITTING", ...
absl::string_view TaskStateName(TaskState state);
// Parses a number stored in SQL; nullopt when out of range.
std::optional<TaskState> TaskStateFromInt(int value);

enum class ImageSource : int { kNone = 0, kContent = 1, kUri = 2, kServerPath = 3 };

struct ImageSpec {
  ImageSource source = ImageSource::kNone;
  std::string uri;          // when kUri: https:// (data: URIs become kContent)
  std::string server_path;  // when kServerPath: as the caller gave it
  std::string filename;
  std::string mime_type;  // resolved for bytes ("image/png", ...)
};

struct TaskSpec {
  std::string backend;
  std::string model;
  ImageSpec image;
  std::string prompt_text;
  std::string ratio;  // resolved pixel ratio
  int duration_seconds = 0;
  std::optional<uint32_t> seed;
  std::string target_filename_stub;  // as requested ("" = derived)
  std::map<std::string, std::string> labels;
  int priority = 0;
  std::string public_figure_threshold;
  // Provider inputs with no field of their own, checked against the model's
  // declared options (backends/api/capabilities.h).
  std::map<std::string, std::string> model_options;
  // Webhooks: where to POST this task's events ("" = none of its own) and
  // the events asked for beyond the default ones ("task.running").
  std::string notify_url;
  std::vector<std::string> notify_events;
};

struct TaskError {
  std::string code;  // "" = no error
  std::string message;
  bool retryable = false;
  std::string provider_code;

  bool empty() const { return code.empty(); }
};

// One earlier try of a task that was put back in the queue (RetryTask):
// the provider task it had, when it started and ended, and how it ended.
struct TaskAttempt {
  std::string provider_task_id;  // "" when none was created
  absl::Time start_time = absl::InfinitePast();
  absl::Time end_time = absl::InfinitePast();
  TaskState state = TaskState::kFailed;  // FAILED or CANCELLED for an earlier try
  TaskError error;
};

// Unset times are absl::InfinitePast().
struct Task {
  std::string id;
  std::string request_id;
  TaskSpec spec;
  TaskState state = TaskState::kQueued;
  std::string provider_task_id;
  std::string provider_status;
  float progress = 0;
  std::string target_filename_stub;  // unique, assigned by the store
  std::string output_path;
  int64_t output_size_bytes = 0;
  std::string output_sha256;
  TaskError error;
  int attempt_count = 0;
  std::string image_sha256;  // "" for https images
  std::string caller;        // who submitted it (set by the server, never by a request)
  int64_t image_size_bytes = 0;
  // Price x duration at submit, in micro-dollars (daily budgets); 0 = free
  // or unknown.
  int64_t estimated_cost_micros = 0;
  absl::Time create_time = absl::InfinitePast();
  absl::Time update_time = absl::InfinitePast();
  absl::Time start_time = absl::InfinitePast();
  absl::Time end_time = absl::InfinitePast();
  absl::Time next_attempt_time = absl::InfinitePast();
  // The tries before the current one, oldest first (the current try is the
  // task's own provider_task_id, start/end times, state and error).
  std::vector<TaskAttempt> attempts;
  // When the output file was deleted (output retention or DeleteTask of
  // its file); unset while it is kept. output_path still names it.
  absl::Time output_removed_time = absl::InfinitePast();
  // Reuse of identical work: SUCCEEDED, the task whose output this one
  // shares (no provider task of its own); QUEUED, the task it waits for
  // (it is not sent while that one runs); "" otherwise.
  std::string reused_from;
  // What makes two tasks identical (store/reuse_key.h), kept for tasks
  // submitted with reuse; "" otherwise (never matched).
  std::string reuse_key;

  // Engine bookkeeping, not part of the API.
  std::string lease_owner;  // "" = unclaimed
  absl::Time lease_expiry = absl::InfinitePast();
  bool provider_cancel_pending = false;  // cancelled here, not yet at the provider
  std::vector<std::string> output_urls;  // from the provider's last poll
  std::string spec_fingerprint;          // idempotency: same request_id, same spec?
  int64_t version = 0;                   // bumped by every stored change
  // The state as last read from the store (not a column): transitions keep
  // it, so a commit knows the state it moves the task from (metrics).
  std::optional<TaskState> stored_state;
};

// The task's current try as an attempt (its provider task id, start and end
// times, state and error).
TaskAttempt CurrentTry(const Task& task);

// A stable digest of everything the caller asked for (the normalized spec
// and the image digest): two submits with one request_id are "the same"
// when their fingerprints are equal.
std::string SpecFingerprint(const TaskSpec& spec, absl::string_view image_sha256);

}  // namespace videotask

#endif  // VIDEOTASK_SERVER_DOMAIN_TASK_H_
