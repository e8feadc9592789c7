#include "server/api/mapping.h"

#include <algorithm>
#include <string>

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "backends/api/errors.h"
#include "backends/http/url_policy.h"
#include "common/log.h"
#include "server/domain/daily_budget.h"

namespace videotask::api {
namespace {

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return;
  int64_t micros = absl::ToUnixMicros(t);
  out->set_seconds(micros / 1'000'000);
  out->set_nanos(static_cast<int32_t>((micros % 1'000'000) * 1000));
}

void SetError(const TaskError& error, v1::Error& out) {
  out.set_code(error.code);
  if (!error.message.empty()) out.set_message(error.message);
  out.set_retryable(error.retryable);
  if (!error.provider_code.empty()) out.set_provider_code(error.provider_code);
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  int64_t millis = absl::ToInt64Milliseconds(d);
  out->set_seconds(millis / 1000);
  out->set_nanos(static_cast<int32_t>((millis % 1000) * 1'000'000));
}

void AddOption(const backends::ModelOption& option, v1::ModelInfo& model) {
  v1::ModelOptionInfo* out = model.add_options();
  out->set_name(option.name);
  out->set_type(std::string(backends::OptionTypeName(option.type)));
  out->set_description(option.description);
  for (const std::string& value : option.values) out->add_values(value);
  const bool numeric = option.type == backends::ModelOption::Type::kInteger ||
                       option.type == backends::ModelOption::Type::kNumber;
  if (numeric && !(option.min == 0 && option.max == 0)) {
    out->set_min(option.min);
    out->set_max(option.max);
  }
  if (option.type == backends::ModelOption::Type::kString) {
    out->set_max_length(static_cast<int32_t>(
        option.max_length > 0 ? option.max_length : backends::kMaxOptionLength));
  }
}

}  // namespace

v1::State StateToProto(TaskState state) {
  switch (state) {
    case TaskState::kQueued:
      return v1::QUEUED;
    case TaskState::kSubmitting:
      return v1::SUBMITTING;
    case TaskState::kRunning:
      return v1::RUNNING;
    case TaskState::kDownloading:
      return v1::DOWNLOADING;
    case TaskState::kSucceeded:
      return v1::SUCCEEDED;
    case TaskState::kFailed:
      return v1::FAILED;
    case TaskState::kCancelled:
      return v1::CANCELLED;
  }
  return v1::STATE_UNSPECIFIED;
}

std::optional<TaskState> StateFromProto(v1::State state) {
  if (state == v1::STATE_UNSPECIFIED) return std::nullopt;
  return TaskStateFromInt(static_cast<int>(state));
}

void SpecToProto(const TaskSpec& spec, v1::TaskSpec& out) {
  // A proto3 string left empty is the default; setting one allocates even
  // when empty, so the fields that are often empty are set only when not.
  out.set_backend(spec.backend);
  if (!spec.model.empty()) out.set_model(spec.model);
  v1::ImageInput* image = out.mutable_image();
  switch (spec.image.source) {
    case ImageSource::kUri:
      image->set_uri(spec.image.uri);
      break;
    case ImageSource::kServerPath:
      image->set_server_path(spec.image.server_path);
      break;
    case ImageSource::kContent:  // never echoed; see Task.image_sha256
    case ImageSource::kNone:
      break;
  }
  if (!spec.image.filename.empty()) image->set_filename(spec.image.filename);
  if (!spec.image.mime_type.empty()) image->set_mime_type(spec.image.mime_type);
  if (!spec.prompt_text.empty()) out.set_prompt_text(spec.prompt_text);
  if (!spec.ratio.empty()) out.set_ratio(spec.ratio);
  out.set_duration_seconds(spec.duration_seconds);
  if (spec.seed.has_value()) out.set_seed(*spec.seed);
  if (!spec.target_filename_stub.empty()) out.set_target_filename_stub(spec.target_filename_stub);
  for (const auto& [k, v] : spec.labels) (*out.mutable_labels())[k] = v;
  for (const auto& [k, v] : spec.model_options) (*out.mutable_model_options())[k] = v;
  out.set_priority(spec.priority);
  if (!spec.public_figure_threshold.empty()) {
    out.set_public_figure_threshold(spec.public_figure_threshold);
  }
  if (!spec.notify_url.empty()) out.set_notify_url(spec.notify_url);
  for (const std::string& event : spec.notify_events) out.add_notify_events(event);
}

void TaskToProto(const Task& task, const std::string& wait_reason, v1::Task& out) {
  out.set_id(task.id);
  if (!task.request_id.empty()) out.set_request_id(task.request_id);
  SpecToProto(task.spec, *out.mutable_spec());
  out.set_state(StateToProto(task.state));
  if (!task.provider_task_id.empty()) out.set_provider_task_id(task.provider_task_id);
  const std::string& provider_status =
      task.state == TaskState::kQueued && !wait_reason.empty() ? wait_reason
                                                               : task.provider_status;
  if (!provider_status.empty()) out.set_provider_status(provider_status);
  out.set_progress(task.progress);
  if (!task.target_filename_stub.empty()) out.set_target_filename_stub(task.target_filename_stub);
  if (!task.output_path.empty()) {
    out.set_output_path(task.output_path);
    out.set_output_mime_type("video/mp4");
  }
  out.set_output_size_bytes(task.output_size_bytes);
  if (!task.output_sha256.empty()) out.set_output_sha256(task.output_sha256);
  if (!task.error.empty()) SetError(task.error, *out.mutable_error());
  out.set_attempt_count(task.attempt_count);
  if (!task.image_sha256.empty()) out.set_image_sha256(task.image_sha256);
  out.set_caller(task.caller);
  if (!task.reused_from.empty()) out.set_reused_from(task.reused_from);
  out.set_estimated_cost_usd(MicrosToUsd(task.estimated_cost_micros));
  SetTime(task.create_time, out.mutable_create_time());
  SetTime(task.update_time, out.mutable_update_time());
  if (task.start_time != absl::InfinitePast()) SetTime(task.start_time, out.mutable_start_time());
  if (task.end_time != absl::InfinitePast()) SetTime(task.end_time, out.mutable_end_time());
  // A follower waiting for an identical task has none ("never").
  if (task.next_attempt_time != absl::InfinitePast() &&
      task.next_attempt_time != absl::InfiniteFuture()) {
    SetTime(task.next_attempt_time, out.mutable_next_attempt_time());
  }
  for (const TaskAttempt& attempt : task.attempts) AttemptToProto(attempt, *out.add_attempts());
  AttemptToProto(CurrentTry(task), *out.add_attempts());
  if (task.output_removed_time != absl::InfinitePast()) {
    SetTime(task.output_removed_time, out.mutable_output_removed_time());
  }
}

v1::Task TaskToProto(const Task& task, const std::string& wait_reason) {
  v1::Task out;
  TaskToProto(task, wait_reason, out);
  return out;
}

v1::WebhookDelivery DeliveryToProto(const store::OutboxMessage& m) {
  v1::WebhookDelivery out;
  out.set_id(m.id);
  out.set_url(backends::RedactUrl(m.url));
  out.set_event_type(m.event_type);
  switch (m.state) {
    case store::DeliveryState::kPending: out.set_state(v1::WebhookDelivery::PENDING); break;
    case store::DeliveryState::kDelivered: out.set_state(v1::WebhookDelivery::DELIVERED); break;
    case store::DeliveryState::kFailed: out.set_state(v1::WebhookDelivery::FAILED); break;
  }
  out.set_attempts(m.attempts);
  out.set_last_status_code(m.last_status_code);
  out.set_last_error(m.last_error);
  if (m.state == store::DeliveryState::kPending) {
    SetTime(m.next_attempt_time, out.mutable_next_attempt_time());
  }
  SetTime(m.delivered_time, out.mutable_delivered_time());
  SetTime(m.event_time, out.mutable_event_time());
  return out;
}

void AttemptToProto(const TaskAttempt& attempt, v1::Attempt& out) {
  if (!attempt.provider_task_id.empty()) out.set_provider_task_id(attempt.provider_task_id);
  if (attempt.start_time != absl::InfinitePast()) {
    SetTime(attempt.start_time, out.mutable_start_time());
  }
  if (attempt.end_time != absl::InfinitePast()) SetTime(attempt.end_time, out.mutable_end_time());
  out.set_state(StateToProto(attempt.state));
  if (!attempt.error.empty()) SetError(attempt.error, *out.mutable_error());
}

void SetPause(const store::BackendPause& pause, v1::BackendInfo& info) {
  info.set_paused(true);
  info.set_pause_reason(pause.reason);
  SetTime(pause.since, info.mutable_pause_time());
  info.set_paused_by(pause.caller);
}

v1::Error StatusToError(const absl::Status& status) {
  v1::Error error;
  error.set_code(absl::StatusCodeToString(status.code()));
  grpc::Status mapped = ToGrpcStatus(status);
  error.set_message(mapped.error_message());
  error.set_retryable(backends::IsRetryable(status));
  return error;
}

v1::BackendInfo BackendToProto(const backends::BackendConfig& config,
                               const backends::Capabilities& caps) {
  v1::BackendInfo out;
  out.set_name(config.name);
  out.set_default_model(caps.default_model);
  for (const backends::ModelCapabilities& m : caps.models) {
    v1::ModelInfo* model = out.add_models();
    model->set_name(m.name);
    for (const std::string& r : m.ratios) model->add_ratios(r);
    for (const auto& [alias, ratio] : m.ratio_aliases) (*model->mutable_ratio_aliases())[alias] = ratio;
    model->set_default_ratio(m.default_ratio);
    for (int d : m.durations) model->add_durations(d);
    model->set_default_duration_seconds(m.default_duration_seconds);
    model->set_max_prompt_utf16(m.max_prompt_utf16);
    model->set_prompt_required(m.prompt_required);
    model->set_credits_per_second(m.credits_per_second);
    model->set_usd_per_second(m.usd_per_second);
    for (const backends::ModelOption& o : m.options) AddOption(o, *model);
  }
  out.set_max_image_bytes(std::min(caps.max_image_bytes, config.max_image_bytes));
  for (const std::string& t : caps.image_mime_types) out.add_image_mime_types(t);
  out.set_max_concurrency(config.max_concurrency);
  SetDuration(config.min_submit_interval, out.mutable_min_submit_interval());
  SetDuration(config.poll_interval, out.mutable_poll_interval());
  out.set_daily_budget_usd(MicrosToUsd(UsdToMicros(config.daily_budget_usd)));
  return out;
}

void SetSpend(int64_t limit_micros, int64_t spent_micros, absl::Time now, v1::BackendInfo& info) {
  info.set_spent_today_usd(MicrosToUsd(spent_micros));
  if (limit_micros > 0) {
    info.set_remaining_today_usd(MicrosToUsd(std::max<int64_t>(limit_micros - spent_micros, 0)));
  }
  SetTime(NextUtcMidnight(now), info.mutable_budget_reset_time());
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  if (status.code() == absl::StatusCode::kInternal || status.code() == absl::StatusCode::kUnknown ||
      status.code() == absl::StatusCode::kDataLoss) {
    VT_LOG_ERROR("internal error: {}", status.ToString());
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        "internal error in videotask; the server log has the details");
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace videotask::api
