// The dashboard's data layer as plain functions: gRPC status to HTTP,
// messages to JSON (protobuf's printer: the field names grpcurl shows),
// list queries from URL parameters, the overview, and Server-Sent Events
// framing. No I/O here, so each piece is tested on its own.
#ifndef VIDEOTASK_SERVER_DASHBOARD_JSON_API_H_
#define VIDEOTASK_SERVER_DASHBOARD_JSON_API_H_

#include <map>
#include <string>
#include <vector>

#include <google/protobuf/message.h>
#include <grpcpp/support/status.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/store/task_store.h"
#include "videotask/v1/video_task_service.pb.h"

namespace videotask::dashboard {

// HTTP status for a gRPC code (NOT_FOUND 404, INVALID_ARGUMENT 400, ...).
int HttpStatusFor(grpc::StatusCode code);

// {"code":"NOT_FOUND","message":"..."}.
std::string ErrorJson(const grpc::Status& status);

// Protobuf's JSON printer: lowerCamelCase names, enums by name, fields at
// their default value left out (as grpcurl prints them).
std::string ToJson(const google::protobuf::Message& message);

// A task list request from the URL: state (repeatable, e.g. FAILED),
// backend, label (repeatable, key=value), q (text: a task id or part of a
// stub or id), page_size, page_token. INVALID_ARGUMENT names the parameter
// and what it takes.
struct ListQuery {
  v1::ListTasksRequest request;
  std::string text;
};
absl::StatusOr<ListQuery> ParseListQuery(const std::multimap<std::string, std::string>& params);

// Whether `task` matches the text filter: part of its id or of its stub
// (case-insensitive).
bool MatchesText(const v1::Task& task, absl::string_view text);

// The overview: per backend, tasks per state, running tasks (submitting,
// running or downloading) against the backend's cap, and when the oldest
// queued task was created (the page shows its age, so the overview only
// changes when the queue does). Backends are those of ListBackends, then any other
// backend the counts name (tasks of a backend no longer enabled).
std::string OverviewJson(const v1::ListBackendsResponse& backends,
                         const std::vector<store::StateCount>& counts,
                         const std::vector<store::OldestQueued>& oldest);

// One Server-Sent Event: "event: <name>\ndata: <data>\n\n" (data must not
// hold a newline; JSON from the printers above never does).
std::string SseEvent(absl::string_view name, absl::string_view data);

}  // namespace videotask::dashboard

#endif  // VIDEOTASK_SERVER_DASHBOARD_JSON_API_H_
