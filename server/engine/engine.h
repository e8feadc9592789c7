// The dispatch engine: takes QUEUED tasks by priority then FIFO under
// per-backend limits, creates them at the provider, polls them, downloads
// their output, retries what may be retried and never creates a task twice.
//
// Threads: one dispatcher thread (Start/Stop) decides what is due; provider
// calls run on the injected worker executor. Every transition is one store
// update (compare-and-set on the task's version) followed by one event on
// the WatchHub. Tests drive it without threads: an InlineExecutor, a
// FakeClock and RunOnce().
//
// The class is defined in parts (docs/engine.md): engine.cc (API side:
// submit, cancel, wait text, commits), dispatcher.cc (claims, slots,
// timers, wake-ups, poll cadence), leases.cc (recovery, takeover, lease
// renewal), steps.cc (provider calls). What a call's outcome does to a task
// is in transitions.h; which errors are retried in error_policy.h.
#ifndef VIDEOTASK_SERVER_ENGINE_ENGINE_H_
#define VIDEOTASK_SERVER_ENGINE_ENGINE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/bit_gen_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "backends/api/backend.h"
#include "common/clock.h"
#include "common/executor.h"
#include "server/domain/start_request.h"
#include "server/domain/task.h"
#include "server/engine/engine_observer.h"
#include "server/engine/error_policy.h"
#include "server/engine/output_writer.h"
#include "server/engine/rate_limiter.h"
#include "server/engine/retry_policy.h"
#include "server/engine/watch_hub.h"
#include "server/store/task_store.h"

namespace videotask::engine {

struct EngineOptions {
  std::string owner;  // lease owner id of this process
  absl::Duration lease_duration = absl::Seconds(60);
  RetryPolicy retry;
  std::string output_dir;
  int64_t max_output_bytes = int64_t{512} << 20;
  int64_t max_queued_tasks = 1'000'000;
  // Told of transitions, provider calls and retries (metrics). Borrowed,
  // outlives the engine; null = none.
  EngineObserver* observer = nullptr;
};

// One enabled backend with its limits.
using EngineBackend = backends::EnabledBackend;

class Engine {
 public:
  // `store`, `clock`, `rng`, `workers` and `hub` are borrowed and must
  // outlive the engine. `rng` is used under the engine's lock.
  Engine(EngineOptions options, store::TaskStore& store, std::vector<EngineBackend> backends,
         const Clock& clock, absl::BitGenRef rng, Executor& workers, WatchHub& hub);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Picks up what a previous process left (RUNNING tasks are polled again,
  // never re-created; SUBMITTING ones fail as SUBMISSION_AMBIGUOUS). Call
  // once, before Start() or the first RunOnce().
  absl::Status Recover() ABSL_LOCKS_EXCLUDED(mu_);
  // Takes over tasks whose lease expired (a process sharing the store
  // died): RUNNING ones are polled, SUBMITTING ones fail as ambiguous. Runs
  // every lease_duration / 2 from RunOnce.
  absl::Status RecoverOrphans() ABSL_LOCKS_EXCLUDED(mu_);
  // Starts the dispatcher thread.
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  // Stops dispatching and waits for provider calls in flight; tasks stay
  // resumable in the store.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Assigns ids and times, stores the tasks (one group commit) and wakes the
  // dispatcher. `done` runs on a store thread; must not block. A full queue
  // gives RESOURCE_EXHAUSTED for every item.
  void SubmitAsync(std::vector<store::NewTask> tasks,
                   std::function<void(store::InsertResults)> done) ABSL_LOCKS_EXCLUDED(mu_);

  // Cancels a task that has not finished (its provider task too).
  // FAILED_PRECONDITION for a terminal task, NOT_FOUND for an unknown one.
  absl::StatusOr<Task> Cancel(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);

  // Why a QUEUED task is waiting, for Task.provider_status ("" otherwise).
  std::string DescribeWait(const Task& task) const ABSL_LOCKS_EXCLUDED(mu_);

  // nullptr for a backend that is not enabled.
  const EngineBackend* FindBackend(absl::string_view name) const;
  const std::vector<EngineBackend>& backends() const { return backends_; }

  // Does everything due now (claims, polls, downloads, retries) and returns
  // when the next thing falls due. For tests and for the dispatcher thread.
  absl::Time RunOnce() ABSL_LOCKS_EXCLUDED(mu_);

  // Tasks this process is working on, per backend (tests, metrics).
  int InFlight(absl::string_view backend) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  enum class Step { kPoll, kFetch, kProviderCancel };
  struct Timer {
    std::string task_id;
    Step step;
  };
  struct BackendState {
    explicit BackendState(absl::Duration min_interval) : limiter(min_interval) {}
    RateLimiter limiter;
    int in_flight = 0;
    bool maybe_queued = true;  // QUEUED tasks may be claimable
    absl::Time next_queued_time = absl::InfinitePast();
  };
  struct LastPoll {
    absl::Time time;
    absl::Duration interval;
  };

  // steps.cc: provider calls, run on the workers.
  void SubmitStep(Task task);
  void OnCreated(const Task& task, const EngineBackend& b, const std::string& provider_id);
  void OnCreateFailed(Task task, const EngineBackend& b, const absl::Status& error);
  void PollStep(const std::string& task_id);
  void FetchStep(const std::string& task_id);
  void ProviderCancelStep(const std::string& task_id);
  void RetryOrFail(Task task, const absl::Status& error, Step step);
  void Fail(Task task, TaskError error);
  absl::StatusOr<backends::StartRequest> BuildStartRequest(const Task& task);

  // dispatcher.cc: claims, slots, timers, wake-ups.
  void DispatcherLoop() ABSL_LOCKS_EXCLUDED(mu_);
  absl::Time ClaimDue(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // How many tasks of `b` to claim now (0: none; `next` lowered to when to
  // look again).
  int ClaimWant(const EngineBackend& b, absl::Time now, absl::Time& next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time ClaimFor(const EngineBackend& b, int want, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  void ScheduleStep(const std::string& task_id, Step step, absl::Time at) ABSL_LOCKS_EXCLUDED(mu_);
  void ScheduleLocked(const std::string& task_id, Step step, absl::Time at)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunStep(const std::string& task_id, Step step) ABSL_LOCKS_EXCLUDED(mu_);
  // The earliest time the next poll of `task_id` may go out.
  absl::Time PollFloorLocked(const std::string& task_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records a poll about to be sent; false (and the poll put off to its
  // floor) when the last one was less than its interval ago.
  bool BeginPoll(const std::string& task_id, absl::Duration interval) ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets a task this process held and frees its backend slot.
  void Release(const std::string& task_id) ABSL_LOCKS_EXCLUDED(mu_);
  void Track(const Task& task) ABSL_LOCKS_EXCLUDED(mu_);
  // The wait before the next poll: the interval plus up to the jitter.
  absl::Duration PollDelay(const EngineBackend& backend) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Duration Backoff(int attempt, const absl::Status& error) ABSL_LOCKS_EXCLUDED(mu_);
  // Lets the dispatcher claim again for `backend` once `due` has come.
  void NoteQueuedAt(const std::string& backend, absl::Time due, bool requeued)
      ABSL_LOCKS_EXCLUDED(mu_);

  // leases.cc: recovery, takeover, renewal.
  absl::Status Scan(bool initial) ABSL_LOCKS_EXCLUDED(mu_);
  enum class Resumed { kSkipped, kResumed, kAmbiguous, kCancelPending };
  Resumed ResumeTask(Task task, bool initial, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // Extends the leases of every task this process holds.
  void RenewLeases(absl::Time now);
  // Which of lease renewal and orphan scan are due; plans the next ones.
  void LeaseWorkDue(absl::Time now, bool& renew, bool& scan) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // engine.cc: commits.
  // Stores `task` (CAS on its version) and publishes it. ABORTED when the
  // task changed meanwhile (logged only for other errors).
  absl::StatusOr<Task> Commit(Task task);
  // After a lost compare-and-set: reloads the task and lets go of it when
  // it has ended meanwhile (a cancel).
  void OnConflict(const std::string& task_id);
  bool Stopping() const ABSL_LOCKS_EXCLUDED(mu_);
  // options_.observer, or one that ignores everything.
  EngineObserver& observer() const;
  // Calls the backend through `call`, reporting the call's outcome and time.
  template <typename Call>
  auto TimedCall(absl::string_view backend, ProviderOp op, Call call) -> decltype(call());

  const EngineOptions options_;
  store::TaskStore& store_;
  std::vector<EngineBackend> backends_;
  const Clock& clock_;
  Executor& workers_;
  WatchHub& hub_;
  OutputWriter output_writer_;

  mutable absl::Mutex mu_;
  absl::BitGenRef rng_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, BackendState> backend_state_ ABSL_GUARDED_BY(mu_);
  std::multimap<absl::Time, Timer> timers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, LastPoll> last_poll_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> poll_pending_ ABSL_GUARDED_BY(mu_);  // a kPoll timer is set
  absl::flat_hash_map<std::string, std::string> active_ ABSL_GUARDED_BY(mu_);  // id -> backend
  int steps_running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool kicked_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time next_lease_renewal_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time next_orphan_scan_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t queued_estimate_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time queued_checked_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::thread dispatcher_;
};

template <typename Call>
auto Engine::TimedCall(absl::string_view backend, ProviderOp op, Call call) -> decltype(call()) {
  const absl::Time began = absl::Now();  // wall time of the call, whatever the engine's clock
  auto result = call();
  if constexpr (std::is_same_v<decltype(result), absl::Status>) {
    observer().OnProviderCall(backend, op, result, absl::Now() - began);
  } else {
    observer().OnProviderCall(backend, op, result.status(), absl::Now() - began);
  }
  return result;
}

}  // namespace videotask::engine

#endif  // VIDEOTASK_SERVER_ENGINE_ENGINE_H_
