// The row layout of `tasks` shared by every store engine: the column order,
// how times, labels and output URLs are stored, and the codec between a Task
// and a row. The codec reads through RowReader and writes through RowWriter,
// which each engine implements over its own statement/result types.
#ifndef VIDEOTASK_SERVER_STORE_TASK_ROW_H_
#define VIDEOTASK_SERVER_STORE_TASK_ROW_H_

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/domain/task.h"

namespace videotask::store::internal {

// The columns of `tasks`, in the order every SELECT/INSERT uses: column i is
// read from result column i and bound to parameter i+1.
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
  // Added by schema v2.
  kModelOptionsJson,
  // Added by schema v3 (SchemaAttemptsAndPauses).
  kAttemptsJson,
  // Added by schema v4 (SchemaRetention).
  kOutputRemovedTime,
  // Added by schema v5 (SchemaCallers).
  kCaller,
  // Added by SchemaReuseKey.
  kReuseKey,
  kReusedFrom,
  // Added by SchemaWebhookOutbox.
  kNotifyUrl,
  kNotifyEventsJson,
  // Added by SchemaDailySpend.
  kEstimatedCostMicros,
  kNumColumns,
};
// The columns of schema v1 (every one before kModelOptionsJson).
inline constexpr int kV1Columns = kModelOptionsJson;

// The columns Update writes (task_store.h: all but id, request_id, spec,
// create_time, image and stub), in the order of its parameters 3, 4, ...
inline constexpr TaskColumn kUpdatedColumns[] = {
    kState,          kProviderTaskId,     kProviderStatus,  kProgress,     kOutputPath,
    kOutputSizeBytes, kOutputSha256,      kErrorCode,       kErrorMessage, kErrorRetryable,
    kErrorProviderCode, kAttemptCount,    kUpdateTime,      kStartTime,    kEndTime,
    kNextAttemptTime, kLeaseOwner,        kLeaseExpiry,     kProviderCancelPending,
    kOutputUrlsJson, kAttemptsJson, kOutputRemovedTime, kReusedFrom,
};

// "id, request_id, ..." with every column name prefixed by `prefix`.
std::string TaskColumnList(absl::string_view prefix = "");
// The name of one column.
absl::string_view TaskColumnName(int column);

// Times are integer microseconds since the epoch; unset (InfinitePast) is
// NULL and InfiniteFuture is INT64_MAX.
inline constexpr int64_t kFutureMicros = std::numeric_limits<int64_t>::max();
// For binding and ordering comparisons: unset sorts first, future last.
int64_t CompareMicros(absl::Time t);
// A non-NULL stored time.
absl::Time TimeFromMicros(int64_t micros);

// Labels (and model options) as a JSON object and output URLs as a JSON array; nullopt (NULL)
// when empty. Invalid UTF-8 is replaced rather than refused.
std::optional<std::string> LabelsToJson(const std::map<std::string, std::string>& labels);
std::optional<std::string> UrlsToJson(const std::vector<std::string>& urls);
absl::Status ParseLabels(const std::string& text, std::map<std::string, std::string>& out);
absl::Status ParseUrls(const std::string& text, std::vector<std::string>& out);
// A task's earlier tries as a JSON array; nullopt (NULL) when there are none.
std::optional<std::string> AttemptsToJson(const std::vector<TaskAttempt>& attempts);
absl::Status ParseAttempts(const std::string& text, std::vector<TaskAttempt>& out);

// One result row of an engine, read by column index.
class RowReader {
 public:
  virtual ~RowReader() = default;
  virtual bool IsNull(int column) const = 0;
  virtual int64_t Int(int column) const = 0;  // 0 for NULL
  virtual double Double(int column) const = 0;
  virtual std::string Text(int column) const = 0;
  // NULL is InfinitePast.
  absl::Time Time(int column) const;
};

// The parameters of one statement: each call binds the next placeholder
// (1, 2, ...). An engine keeps the first binding error for its caller.
class RowWriter {
 public:
  virtual ~RowWriter() = default;
  virtual RowWriter& Null() = 0;
  virtual RowWriter& Int(int64_t value) = 0;
  virtual RowWriter& Double(double value) = 0;
  virtual RowWriter& Text(absl::string_view value) = 0;
  virtual RowWriter& Blob(absl::string_view value) = 0;
  RowWriter& OptionalText(const std::optional<std::string>& value);
  RowWriter& Bool(bool value) { return Int(value ? 1 : 0); }
  // Unset (InfinitePast) is NULL; InfiniteFuture is INT64_MAX.
  RowWriter& Time(absl::Time t);
};

// Reads a row whose first kNumColumns columns are TaskColumnList().
absl::StatusOr<Task> ReadTaskRow(const RowReader& row);
// Binds the value of one column of `task`.
void WriteTaskColumn(const Task& task, TaskColumn column, RowWriter& out);
// Binds every column of `task`, in column order (an INSERT of all columns).
void WriteTaskRow(const Task& task, RowWriter& out);
// Binds the parameters of TaskStatements::update: id, version, then
// kUpdatedColumns.
void WriteTaskUpdate(const Task& task, RowWriter& out);

}  // namespace videotask::store::internal

#endif  // VIDEOTASK_SERVER_STORE_TASK_ROW_H_
