#include "server/webhooks/webhook_policy.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "nlohmann/json.hpp"

namespace videotask::webhooks {

absl::string_view EventTypeFor(TaskState state) {
  switch (state) {
    case TaskState::kSucceeded: return kTaskSucceeded;
    case TaskState::kFailed: return kTaskFailed;
    case TaskState::kCancelled: return kTaskCancelled;
    case TaskState::kRunning: return kTaskRunning;
    case TaskState::kQueued:
    case TaskState::kSubmitting:
    case TaskState::kDownloading:
      return "";
  }
  return "";
}

absl::Status CheckNotifyEvents(const std::vector<std::string>& events) {
  for (const std::string& event : events) {
    if (event != kTaskRunning && event != kTaskSucceeded && event != kTaskFailed &&
        event != kTaskCancelled) {
      return absl::InvalidArgumentError(absl::StrCat(
          "spec.notify_events: \"", event, "\" is not an event; allowed: task.running "
          "(task.succeeded, task.failed and task.cancelled are always sent)"));
    }
  }
  return absl::OkStatus();
}

WebhookPolicy::WebhookPolicy(std::string server_url, RenderTask render, absl::BitGenRef rng)
    : server_url_(std::move(server_url)), render_(std::move(render)), rng_(rng) {}

std::string WebhookPolicy::NewMessageId(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  return absl::StrCat("msg_", NewTaskId(now, rng_));
}

std::string WebhookPolicy::Body(absl::string_view type, absl::Time time,
                                const std::string& task_json) {
  nlohmann::json body;
  body["type"] = std::string(type);
  body["timestamp"] = absl::FormatTime("%Y-%m-%d%ET%H:%M:%E6SZ", time, absl::UTCTimeZone());
  body["data"] = nlohmann::json::parse(task_json, nullptr, /*allow_exceptions=*/false);
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<store::OutboxMessage> WebhookPolicy::OnStored(const Task& task,
                                                          std::optional<TaskState> from) const {
  const absl::string_view type = EventTypeFor(task.state);
  if (type.empty() || from == task.state) return {};
  if (type == kTaskRunning &&
      std::find(task.spec.notify_events.begin(), task.spec.notify_events.end(), kTaskRunning) ==
          task.spec.notify_events.end()) {
    return {};
  }
  std::vector<std::string> urls;
  if (!task.spec.notify_url.empty()) urls.push_back(task.spec.notify_url);
  if (!server_url_.empty() && server_url_ != task.spec.notify_url) urls.push_back(server_url_);
  if (urls.empty()) return {};
  const absl::Time when =
      task.update_time == absl::InfinitePast() ? task.create_time : task.update_time;
  const std::string body = Body(type, when, render_(task));
  std::vector<store::OutboxMessage> out;
  for (std::string& url : urls) {
    store::OutboxMessage m;
    m.id = NewMessageId(when);
    m.task_id = task.id;
    m.url = std::move(url);
    m.event_type = std::string(type);
    m.event_time = when;
    m.payload = body;
    m.next_attempt_time = when;
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace videotask::webhooks
