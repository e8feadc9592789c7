// Domain <-> proto mapping, and the one absl::Status -> grpc::Status point.
#ifndef VIDEOTASK_SERVER_API_MAPPING_H_
#define VIDEOTASK_SERVER_API_MAPPING_H_

#include <optional>
#include <string>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backends/api/backend.h"
#include "server/domain/task.h"
#include "server/store/task_store.h"
#include "videotask/v1/video_task_service.pb.h"

namespace videotask::api {

namespace v1 = ::videotask::v1;

v1::State StateToProto(TaskState state);
std::optional<TaskState> StateFromProto(v1::State state);

// The *ToProto functions that take `out` fill it in place, so a message
// that lives on a protobuf arena (a reply) is built there, not copied in.
void SpecToProto(const TaskSpec& spec, v1::TaskSpec& out);
// `wait_reason` fills provider_status of a QUEUED task.
void TaskToProto(const Task& task, const std::string& wait_reason, v1::Task& out);
v1::Task TaskToProto(const Task& task, const std::string& wait_reason);

// One try of a task (TaskToProto lists the earlier ones, then the current).
void AttemptToProto(const TaskAttempt& attempt, v1::Attempt& out);

// One webhook message as the task shows it (URL without query or user info).
v1::WebhookDelivery DeliveryToProto(const store::OutboxMessage& message);

// A failed item of a batch: code is the status name ("INVALID_ARGUMENT").
v1::Error StatusToError(const absl::Status& status);

v1::BackendInfo BackendToProto(const backends::BackendConfig& config,
                               const backends::Capabilities& caps);

// Marks `info` paused by `pause`.
void SetPause(const store::BackendPause& pause, v1::BackendInfo& info);
// Today's spend of a backend against its daily budget (0 = none) and when
// it resets.
void SetSpend(int64_t limit_micros, int64_t spent_micros, absl::Time now, v1::BackendInfo& info);

// INTERNAL and UNKNOWN details are logged here and replaced by a generic
// message; every other code passes its message through.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace videotask::api

#endif  // VIDEOTASK_SERVER_API_MAPPING_H_
