// What the engine reports about its work, for metrics: committed state
// changes, provider calls, retries, ambiguous creates and lease takeovers.
// Injected through EngineOptions::observer; the engine knows nothing of how
// it is exported. Calls come from worker and dispatcher threads, outside the
// engine's lock: implementations are thread-safe and cheap (no I/O).
#ifndef VIDEOTASK_SERVER_ENGINE_ENGINE_OBSERVER_H_
#define VIDEOTASK_SERVER_ENGINE_ENGINE_OBSERVER_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/domain/task.h"

namespace videotask::engine {

// A provider call, as the metrics name it.
enum class ProviderOp { kCreate, kPoll, kCancel, kDownload };

class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  // Tasks stored as QUEUED by a submit (new tasks only).
  virtual void OnSubmitted(absl::string_view backend, int tasks) {}
  // A committed change of state (`task` as stored now).
  virtual void OnTransition(TaskState from, const Task& task) {}
  // One call to the backend and its outcome.
  virtual void OnProviderCall(absl::string_view backend, ProviderOp op, const absl::Status& status,
                              absl::Duration elapsed) {}
  // A failed step that will be tried again.
  virtual void OnRetry(absl::string_view backend, ProviderOp op) {}
  // A create that may have reached the provider and is not sent again.
  virtual void OnAmbiguousCreate(absl::string_view backend) {}
  // Tasks of another process (expired lease) taken over.
  virtual void OnLeaseTakeover(int tasks) {}
};

}  // namespace videotask::engine

#endif  // VIDEOTASK_SERVER_ENGINE_ENGINE_OBSERVER_H_
