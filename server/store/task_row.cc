#include "server/store/task_row.h"

#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/store/schema.h"

namespace videotask::store::internal {
namespace {

std::string DumpJson(const nlohmann::json& j) {
  // Invalid UTF-8 is replaced rather than thrown on.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::Status WithTaskId(const absl::Status& status, const std::string& id) {
  if (status.ok()) return status;
  return absl::InternalError(absl::StrCat("task ", id, ": ", status.message()));
}

// The spec columns (backend .. public_figure_threshold).
absl::Status ReadSpec(const RowReader& row, Task& t) {
  TaskSpec& s = t.spec;
  s.backend = row.Text(kBackend);
  s.model = row.Text(kModel);
  int64_t source = row.Int(kImageSource);
  if (source < 0 || source > static_cast<int>(ImageSource::kServerPath)) {
    return absl::InternalError(absl::StrCat("task ", t.id, " has a bad image_source ", source));
  }
  s.image.source = static_cast<ImageSource>(source);
  s.image.uri = row.Text(kImageUri);
  s.image.server_path = row.Text(kImageServerPath);
  s.image.filename = row.Text(kImageFilename);
  s.image.mime_type = row.Text(kImageMimeType);
  s.prompt_text = row.Text(kPromptText);
  s.ratio = row.Text(kRatio);
  s.duration_seconds = static_cast<int>(row.Int(kDurationSeconds));
  if (!row.IsNull(kSeed)) s.seed = static_cast<uint32_t>(row.Int(kSeed));
  s.target_filename_stub = row.Text(kRequestedStub);
  if (!row.IsNull(kLabelsJson)) {
    absl::Status status = ParseLabels(row.Text(kLabelsJson), s.labels);
    if (!status.ok()) return WithTaskId(status, t.id);
  }
  s.priority = static_cast<int>(row.Int(kPriority));
  s.public_figure_threshold = row.Text(kPublicFigureThreshold);
  if (!row.IsNull(kModelOptionsJson)) {
    absl::Status status = ParseLabels(row.Text(kModelOptionsJson), s.model_options);
    if (!status.ok()) return WithTaskId(status, t.id);
  }
  s.notify_url = row.Text(kNotifyUrl);
  if (!row.IsNull(kNotifyEventsJson)) {
    absl::Status status = ParseUrls(row.Text(kNotifyEventsJson), s.notify_events);
    if (!status.ok()) return WithTaskId(status, t.id);
  }
  return absl::OkStatus();
}

// The progress columns (state .. version).
absl::Status ReadProgress(const RowReader& row, Task& t) {
  std::optional<TaskState> state = TaskStateFromInt(static_cast<int>(row.Int(kState)));
  if (!state.has_value())
    return absl::InternalError(absl::StrCat("task ", t.id, " has a bad state"));
  t.state = *state;
  t.stored_state = t.state;
  t.provider_task_id = row.Text(kProviderTaskId);
  t.provider_status = row.Text(kProviderStatus);
  t.progress = static_cast<float>(row.Double(kProgress));
  t.target_filename_stub = row.Text(kTargetStub);
  t.output_path = row.Text(kOutputPath);
  t.output_size_bytes = row.Int(kOutputSizeBytes);
  t.output_sha256 = row.Text(kOutputSha256);
  t.error.code = row.Text(kErrorCode);
  t.error.message = row.Text(kErrorMessage);
  t.error.retryable = row.Int(kErrorRetryable) != 0;
  t.error.provider_code = row.Text(kErrorProviderCode);
  t.attempt_count = static_cast<int>(row.Int(kAttemptCount));
  t.image_sha256 = row.Text(kImageSha256);
  t.image_size_bytes = row.Int(kImageSizeBytes);
  t.create_time = row.Time(kCreateTime);
  t.update_time = row.Time(kUpdateTime);
  t.start_time = row.Time(kStartTime);
  t.end_time = row.Time(kEndTime);
  t.next_attempt_time = row.Time(kNextAttemptTime);
  t.lease_owner = row.Text(kLeaseOwner);
  t.lease_expiry = row.Time(kLeaseExpiry);
  t.provider_cancel_pending = row.Int(kProviderCancelPending) != 0;
  if (!row.IsNull(kOutputUrlsJson)) {
    absl::Status status = ParseUrls(row.Text(kOutputUrlsJson), t.output_urls);
    if (!status.ok()) return WithTaskId(status, t.id);
  }
  t.spec_fingerprint = row.Text(kSpecFingerprint);
  t.version = row.Int(kVersion);
  if (!row.IsNull(kAttemptsJson)) {
    absl::Status status = ParseAttempts(row.Text(kAttemptsJson), t.attempts);
    if (!status.ok()) return WithTaskId(status, t.id);
  }
  t.output_removed_time = row.Time(kOutputRemovedTime);
  t.caller = row.Text(kCaller);
  t.reuse_key = row.Text(kReuseKey);
  t.reused_from = row.Text(kReusedFrom);
  t.estimated_cost_micros = row.Int(kEstimatedCostMicros);
  return absl::OkStatus();
}

// The spec's columns (backend .. public_figure_threshold).
void WriteSpecColumn(const TaskSpec& s, TaskColumn column, RowWriter& out) {
  switch (column) {
    case kBackend: out.Text(s.backend); return;
    case kModel: out.Text(s.model); return;
    case kImageSource: out.Int(static_cast<int>(s.image.source)); return;
    case kImageUri: out.Text(s.image.uri); return;
    case kImageServerPath: out.Text(s.image.server_path); return;
    case kImageFilename: out.Text(s.image.filename); return;
    case kImageMimeType: out.Text(s.image.mime_type); return;
    case kPromptText: out.Text(s.prompt_text); return;
    case kRatio: out.Text(s.ratio); return;
    case kDurationSeconds: out.Int(s.duration_seconds); return;
    case kSeed: s.seed.has_value() ? out.Int(*s.seed) : out.Null(); return;
    case kRequestedStub: out.Text(s.target_filename_stub); return;
    case kLabelsJson: out.OptionalText(LabelsToJson(s.labels)); return;
    case kPriority: out.Int(s.priority); return;
    case kModelOptionsJson: out.OptionalText(LabelsToJson(s.model_options)); return;
    case kNotifyUrl: out.Text(s.notify_url); return;
    case kNotifyEventsJson: out.OptionalText(UrlsToJson(s.notify_events)); return;
    default: out.Text(s.public_figure_threshold); return;
  }
}

}  // namespace

std::string TaskColumnList(absl::string_view prefix) {
  std::vector<std::string> names;
  for (int i = 0; i < kNumColumns; ++i)
    names.push_back(absl::StrCat(prefix, TaskColumnDef(i).name));
  return absl::StrJoin(names, ", ");
}

absl::string_view TaskColumnName(int column) { return TaskColumnDef(column).name; }

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

namespace {

// Reads a flat JSON object of strings straight into a map, without the
// document tree nlohmann::json::parse would build first: every listed task
// reads its labels and model options, so this is on the list path.
class StringMapReader final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit StringMapReader(std::map<std::string, std::string>& out) : out_(out) {}

  bool start_object(std::size_t) override { return depth_++ == 0 || Fail(kNotStrings); }
  bool end_object() override { return --depth_ >= 0; }
  bool key(string_t& key) override {
    key_ = std::move(key);
    return true;
  }
  bool string(string_t& value) override {
    if (depth_ != 1) return Fail(kNotObject);
    out_.insert_or_assign(std::move(key_), std::move(value));
    return true;
  }
  bool null() override { return Fail(Value()); }
  bool boolean(bool) override { return Fail(Value()); }
  bool number_integer(number_integer_t) override { return Fail(Value()); }
  bool number_unsigned(number_unsigned_t) override { return Fail(Value()); }
  bool number_float(number_float_t, const string_t&) override { return Fail(Value()); }
  bool binary(binary_t&) override { return Fail(Value()); }
  bool start_array(std::size_t) override { return Fail(Value()); }
  bool end_array() override { return Fail(Value()); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return Fail(kNotObject);
  }

  const char* error() const { return error_; }

 private:
  static constexpr const char* kNotObject = "stored labels are not a JSON object";
  static constexpr const char* kNotStrings = "stored label value is not a string";

  const char* Value() const { return depth_ == 0 ? kNotObject : kNotStrings; }
  bool Fail(const char* error) {
    if (error_ == nullptr) error_ = error;
    return false;
  }

  std::map<std::string, std::string>& out_;
  std::string key_;
  int depth_ = 0;
  const char* error_ = nullptr;
};

}  // namespace

absl::Status ParseLabels(const std::string& text, std::map<std::string, std::string>& out) {
  StringMapReader reader(out);
  bool ok = nlohmann::json::sax_parse(text, &reader);
  if (reader.error() != nullptr) return absl::InternalError(reader.error());
  if (!ok) return absl::InternalError("stored labels are not a JSON object");
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

std::optional<std::string> AttemptsToJson(const std::vector<TaskAttempt>& attempts) {
  if (attempts.empty()) return std::nullopt;
  auto micros = [](absl::Time t) -> nlohmann::json {
    if (t == absl::InfinitePast()) return nullptr;
    return CompareMicros(t);
  };
  nlohmann::json j = nlohmann::json::array();
  for (const TaskAttempt& a : attempts) {
    j.push_back({{"provider_task_id", a.provider_task_id},
                 {"start_us", micros(a.start_time)},
                 {"end_us", micros(a.end_time)},
                 {"state", static_cast<int>(a.state)},
                 {"error_code", a.error.code},
                 {"error_message", a.error.message},
                 {"error_retryable", a.error.retryable},
                 {"error_provider_code", a.error.provider_code}});
  }
  return DumpJson(j);
}

absl::Status ParseAttempts(const std::string& text, std::vector<TaskAttempt>& out) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) {
    return absl::InternalError("stored attempts are not a JSON array");
  }
  auto text_of = [](const nlohmann::json& o, const char* key) {
    auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto time_of = [](const nlohmann::json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end() || !it->is_number_integer()) return absl::InfinitePast();
    return TimeFromMicros(it->get<int64_t>());
  };
  for (const auto& o : j) {
    if (!o.is_object()) return absl::InternalError("stored attempt is not a JSON object");
    TaskAttempt a;
    a.provider_task_id = text_of(o, "provider_task_id");
    a.start_time = time_of(o, "start_us");
    a.end_time = time_of(o, "end_us");
    auto state = o.find("state");
    std::optional<TaskState> parsed;
    if (state != o.end() && state->is_number_integer()) {
      parsed = TaskStateFromInt(state->get<int>());
    }
    if (!parsed.has_value()) return absl::InternalError("stored attempt has a bad state");
    a.state = *parsed;
    a.error.code = text_of(o, "error_code");
    a.error.message = text_of(o, "error_message");
    auto retryable = o.find("error_retryable");
    a.error.retryable = retryable != o.end() && retryable->is_boolean() && retryable->get<bool>();
    a.error.provider_code = text_of(o, "error_provider_code");
    out.push_back(std::move(a));
  }
  return absl::OkStatus();
}

absl::Time RowReader::Time(int column) const {
  if (IsNull(column)) return absl::InfinitePast();
  return TimeFromMicros(Int(column));
}

RowWriter& RowWriter::OptionalText(const std::optional<std::string>& value) {
  return value.has_value() ? Text(*value) : Null();
}

RowWriter& RowWriter::Time(absl::Time t) {
  if (t == absl::InfinitePast()) return Null();
  return Int(CompareMicros(t));
}

absl::StatusOr<Task> ReadTaskRow(const RowReader& row) {
  Task t;
  t.id = row.Text(kId);
  t.request_id = row.Text(kRequestId);
  absl::Status status = ReadSpec(row, t);
  if (status.ok()) status = ReadProgress(row, t);
  if (!status.ok()) return status;
  return t;
}

void WriteTaskColumn(const Task& t, TaskColumn column, RowWriter& out) {
  switch (column) {
    case kId: out.Text(t.id); return;
    case kRequestId: out.Text(t.request_id); return;
    case kState: out.Int(static_cast<int>(t.state)); return;
    case kProviderTaskId: out.Text(t.provider_task_id); return;
    case kProviderStatus: out.Text(t.provider_status); return;
    case kProgress: out.Double(t.progress); return;
    case kTargetStub: out.Text(t.target_filename_stub); return;
    case kOutputPath: out.Text(t.output_path); return;
    case kOutputSizeBytes: out.Int(t.output_size_bytes); return;
    case kOutputSha256: out.Text(t.output_sha256); return;
    case kErrorCode: out.Text(t.error.code); return;
    case kErrorMessage: out.Text(t.error.message); return;
    case kErrorRetryable: out.Bool(t.error.retryable); return;
    case kErrorProviderCode: out.Text(t.error.provider_code); return;
    case kAttemptCount: out.Int(t.attempt_count); return;
    case kImageSha256: out.Text(t.image_sha256); return;
    case kImageSizeBytes: out.Int(t.image_size_bytes); return;
    case kCreateTime: out.Int(CompareMicros(t.create_time)); return;  // never NULL
    case kUpdateTime: out.Time(t.update_time); return;
    case kStartTime: out.Time(t.start_time); return;
    case kEndTime: out.Time(t.end_time); return;
    case kNextAttemptTime: out.Time(t.next_attempt_time); return;
    case kLeaseOwner: out.Text(t.lease_owner); return;
    case kLeaseExpiry: out.Time(t.lease_expiry); return;
    case kProviderCancelPending: out.Bool(t.provider_cancel_pending); return;
    case kOutputUrlsJson: out.OptionalText(UrlsToJson(t.output_urls)); return;
    case kSpecFingerprint: out.Text(t.spec_fingerprint); return;
    case kVersion: out.Int(t.version); return;
    case kAttemptsJson: out.OptionalText(AttemptsToJson(t.attempts)); return;
    case kOutputRemovedTime: out.Time(t.output_removed_time); return;
    case kCaller: out.Text(t.caller); return;
    case kReuseKey: out.Text(t.reuse_key); return;
    case kReusedFrom: out.Text(t.reused_from); return;
    case kEstimatedCostMicros: out.Int(t.estimated_cost_micros); return;
    default: WriteSpecColumn(t.spec, column, out); return;
  }
}

void WriteTaskRow(const Task& t, RowWriter& out) {
  for (int c = 0; c < kNumColumns; ++c) WriteTaskColumn(t, static_cast<TaskColumn>(c), out);
}

void WriteTaskUpdate(const Task& task, RowWriter& out) {
  out.Text(task.id).Int(task.version);
  for (TaskColumn c : kUpdatedColumns) WriteTaskColumn(task, c, out);
}

}  // namespace videotask::store::internal
