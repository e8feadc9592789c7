// Which webhooks a task's change of state makes: the events, the URLs (the
// task's notify_url and the server-wide --webhook_url) and the body, fixed
// when the event happens. The store writes them to its outbox in the
// transaction of the change (task_store.h OutboxPolicy).
#ifndef VIDEOTASK_SERVER_WEBHOOKS_WEBHOOK_POLICY_H_
#define VIDEOTASK_SERVER_WEBHOOKS_WEBHOOK_POLICY_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/domain/task.h"
#include "server/store/task_store.h"

namespace videotask::webhooks {

inline constexpr char kTaskSucceeded[] = "task.succeeded";
inline constexpr char kTaskFailed[] = "task.failed";
inline constexpr char kTaskCancelled[] = "task.cancelled";
inline constexpr char kTaskRunning[] = "task.running";

// The event of a change into `state`: task.succeeded, task.failed,
// task.cancelled, task.running; "" for the other states.
absl::string_view EventTypeFor(TaskState state);

// TaskSpec.notify_events: only "task.running" may be asked for (the
// terminal events are always sent); INVALID_ARGUMENT naming the bad value
// and the allowed ones.
absl::Status CheckNotifyEvents(const std::vector<std::string>& events);

class WebhookPolicy final : public store::OutboxPolicy {
 public:
  // The Task as protobuf JSON (the API's mapping and printer).
  using RenderTask = std::function<std::string(const Task&)>;

  // `server_url`: "" or the URL every task's events go to as well. `rng`
  // (borrowed) draws the message ids; used under a lock.
  WebhookPolicy(std::string server_url, RenderTask render, absl::BitGenRef rng);

  std::vector<store::OutboxMessage> OnStored(const Task& task,
                                             std::optional<TaskState> from) const override;

  // The body of an event: {"type", "timestamp", "data": <task>}.
  static std::string Body(absl::string_view type, absl::Time time, const std::string& task_json);

 private:
  std::string NewMessageId(absl::Time now) const ABSL_LOCKS_EXCLUDED(mu_);

  const std::string server_url_;
  const RenderTask render_;
  mutable absl::Mutex mu_;
  absl::BitGenRef rng_ ABSL_GUARDED_BY(mu_);
};

}  // namespace videotask::webhooks

#endif  // VIDEOTASK_SERVER_WEBHOOKS_WEBHOOK_POLICY_H_
