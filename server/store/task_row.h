// The row layout of `tasks` shared by the SQLite and PostgreSQL stores: the
// column order, and how times, labels and output URLs are stored.
#ifndef VIDEOTASK_SERVER_STORE_TASK_ROW_H_
#define VIDEOTASK_SERVER_STORE_TASK_ROW_H_

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace videotask::store::internal {

// The columns of `tasks`, in the order every SELECT/INSERT below uses:
// column i is read from result column i and bound to parameter i+1.
enum TaskColumn : int {
  kId,
  kRequestId,
  kBackend,
  kModel,
  kImageSource,
  kImageUri,
  kImageServerPath,
  kImageFilename,
  kImageMimeType,
  kPromptText,
  kRatio,
  kDurationSeconds,
  kSeed,
  kRequestedStub,
  kLabelsJson,
  kPriority,
  kPublicFigureThreshold,
  kState,
  kProviderTaskId,
  kProviderStatus,
  kProgress,
  kTargetStub,
  kOutputPath,
  kOutputSizeBytes,
  kOutputSha256,
  kErrorCode,
  kErrorMessage,
  kErrorRetryable,
  kErrorProviderCode,
  kAttemptCount,
  kImageSha256,
  kImageSizeBytes,
  kCreateTime,
  kUpdateTime,
  kStartTime,
  kEndTime,
  kNextAttemptTime,
  kLeaseOwner,
  kLeaseExpiry,
  kProviderCancelPending,
  kOutputUrlsJson,
  kSpecFingerprint,
  kVersion,
  kNumColumns,
};

inline constexpr const char* kColumnNames[kNumColumns] = {
    "id",
    "request_id",
    "backend",
    "model",
    "image_source",
    "image_uri",
    "image_server_path",
    "image_filename",
    "image_mime_type",
    "prompt_text",
    "ratio",
    "duration_seconds",
    "seed",
    "requested_stub",
    "labels_json",
    "priority",
    "public_figure_threshold",
    "state",
    "provider_task_id",
    "provider_status",
    "progress",
    "target_filename_stub",
    "output_path",
    "output_size_bytes",
    "output_sha256",
    "error_code",
    "error_message",
    "error_retryable",
    "error_provider_code",
    "attempt_count",
    "image_sha256",
    "image_size_bytes",
    "create_time",
    "update_time",
    "start_time",
    "end_time",
    "next_attempt_time",
    "lease_owner",
    "lease_expiry",
    "provider_cancel_pending",
    "output_urls_json",
    "spec_fingerprint",
    "version",
};

// "id, request_id, ..." with every column name prefixed by `prefix`.
std::string TaskColumnList(absl::string_view prefix = "");

// Times are INTEGER microseconds since the epoch; unset (InfinitePast) is
// NULL and InfiniteFuture is INT64_MAX.
inline constexpr int64_t kFutureMicros = std::numeric_limits<int64_t>::max();
// For binding and ordering comparisons: unset sorts first, future last.
int64_t CompareMicros(absl::Time t);
// A non-NULL stored time.
absl::Time TimeFromMicros(int64_t micros);

// Labels as a JSON object and output URLs as a JSON array; nullopt (NULL)
// when empty. Invalid UTF-8 is replaced rather than refused.
std::optional<std::string> LabelsToJson(const std::map<std::string, std::string>& labels);
std::optional<std::string> UrlsToJson(const std::vector<std::string>& urls);
absl::Status ParseLabels(const std::string& text, std::map<std::string, std::string>& out);
absl::Status ParseUrls(const std::string& text, std::vector<std::string>& out);

}  // namespace videotask::store::internal

#endif  // VIDEOTASK_SERVER_STORE_TASK_ROW_H_
