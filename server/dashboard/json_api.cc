#include "server/dashboard/json_api.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <utility>

#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/domain/task.h"

namespace videotask::dashboard {
namespace {

constexpr int kMaxTextBytes = 200;

absl::Status BadParam(absl::string_view name, absl::string_view allowed) {
  return absl::InvalidArgumentError(absl::StrCat("parameter ", name, ": ", allowed));
}

std::string StateNames() {
  std::vector<std::string> names;
  for (int s = v1::QUEUED; s <= v1::CANCELLED; ++s) names.push_back(v1::State_Name(s));
  return absl::StrJoin(names, ", ");
}

bool Holds(TaskState state) {
  return state == TaskState::kSubmitting || state == TaskState::kRunning ||
         state == TaskState::kDownloading;
}

}  // namespace

int HttpStatusFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    default:
      return 500;
  }
}

std::string ErrorJson(const grpc::Status& status) {
  static const char* const kNames[] = {
      "OK",        "CANCELLED",          "UNKNOWN",           "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",  "ALREADY_EXISTS",    "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",       "UNAVAILABLE",       "DATA_LOSS",
      "UNAUTHENTICATED"};
  int code = static_cast<int>(status.error_code());
  nlohmann::json j;
  j["code"] = code >= 0 && code <= 16 ? kNames[code] : "UNKNOWN";
  j["message"] = status.error_message();
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = false;
  // Our own messages always print; a failure would be a bug, shown as {}.
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

absl::StatusOr<ListQuery> ParseListQuery(const std::multimap<std::string, std::string>& params) {
  ListQuery query;
  v1::ListTasksRequest& req = query.request;
  for (const auto& [name, value] : params) {
    if (name == "state") {
      v1::State state;
      if (!v1::State_Parse(value, &state) || state == v1::STATE_UNSPECIFIED) {
        return BadParam("state", absl::StrCat("one of ", StateNames()));
      }
      req.add_states(state);
    } else if (name == "backend") {
      req.set_backend(value);
    } else if (name == "label") {
      size_t eq = value.find('=');
      if (eq == std::string::npos || eq == 0) return BadParam("label", "key=value");
      (*req.mutable_labels())[value.substr(0, eq)] = value.substr(eq + 1);
    } else if (name == "q") {
      if (value.size() > kMaxTextBytes) {
        return BadParam("q", absl::StrCat("at most ", kMaxTextBytes, " bytes"));
      }
      query.text = std::string(absl::StripAsciiWhitespace(value));
    } else if (name == "page_size") {
      int size = 0;
      if (!absl::SimpleAtoi(value, &size) || size < 0) {
        return BadParam("page_size", "a whole number 0..1000");
      }
      req.set_page_size(size);
    } else if (name == "page_token") {
      req.set_page_token(value);
    } else {
      return BadParam(name, "unknown; known: state, backend, label, q, page_size, page_token");
    }
  }
  return query;
}

bool MatchesText(const v1::Task& task, absl::string_view text) {
  if (text.empty()) return true;
  const std::string needle = absl::AsciiStrToLower(text);
  return absl::StrContains(absl::AsciiStrToLower(task.id()), needle) ||
         absl::StrContains(absl::AsciiStrToLower(task.target_filename_stub()), needle);
}

std::string OverviewJson(const v1::ListBackendsResponse& backends,
                         const std::vector<store::StateCount>& counts,
                         const std::vector<store::OldestQueued>& oldest) {
  std::vector<std::string> names;
  std::map<std::string, int> caps;
  for (const v1::BackendInfo& b : backends.backends()) {
    names.push_back(b.name());
    caps[b.name()] = b.max_concurrency();
  }
  std::set<std::string> known(names.begin(), names.end());
  for (const store::StateCount& c : counts) {
    if (known.insert(c.backend).second) names.push_back(c.backend);
  }
  nlohmann::json list = nlohmann::json::array();
  for (const std::string& name : names) {
    nlohmann::json b;
    b["name"] = name;
    b["maxConcurrency"] = caps.count(name) ? caps[name] : 0;
    nlohmann::json per_state = nlohmann::json::object();
    int64_t active = 0;
    for (const store::StateCount& c : counts) {
      if (c.backend != name) continue;
      per_state[std::string(TaskStateName(c.state))] = c.count;
      if (Holds(c.state)) active += c.count;
    }
    b["counts"] = per_state;
    b["active"] = active;
    for (const store::OldestQueued& o : oldest) {
      if (o.backend == name) {
        b["oldestQueuedTime"] = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", o.create_time, absl::UTCTimeZone());
      }
    }
    list.push_back(std::move(b));
  }
  nlohmann::json j;
  j["defaultBackend"] = backends.default_backend();
  j["backends"] = std::move(list);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string SseEvent(absl::string_view name, absl::string_view data) {
  return absl::StrCat("event: ", name, "\ndata: ", data, "\n\n");
}

}  // namespace videotask::dashboard
