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
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/bit_gen_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "backends/api/backend.h"
#include "common/clock.h"
#include "common/disk_space.h"
#include "common/executor.h"
#include "server/domain/start_request.h"
#include "server/domain/task.h"
#include "server/engine/engine_observer.h"
#include "server/engine/error_policy.h"
#include "server/engine/output_writer.h"
#include "server/engine/rate_limiter.h"
#include "server/engine/retry_policy.h"
#include "server/engine/transitions.h"
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
  // After a claim that took fewer tasks than the backend had free slots
  // (the queue ran dry), the next claim for that backend waits this long,
  // so tasks submitted meanwhile are claimed together in one store
  // transaction instead of one claim each. Zero claims at every wake-up.
  absl::Duration claim_interval = absl::ZeroDuration();
  // How often the paused backends are read again from the store, to see
  // pauses and resumes made by other processes sharing it.
  absl::Duration pause_refresh = absl::Seconds(1);

  // Retention (retention.cc). Terminal tasks whose end time is older than
  // `retention` are deleted with their images; zero keeps them forever.
  absl::Duration retention = absl::Hours(720);
  // Output files of SUCCEEDED tasks older than this are deleted and the
  // task says so (output_removed_time); zero keeps them.
  absl::Duration output_retention = absl::ZeroDuration();
  // How often a retention pass runs, and the most tasks one store
  // transaction of it touches.
  absl::Duration retention_interval = absl::Minutes(1);
  int retention_batch = 100;
  // Free database pages given back to the file system per pass.
  int64_t reclaim_pages = 4096;

  // Disk-full safety (disk.cc). Under `min_free_disk_bytes` free in
  // `data_dir` ("" = none, e.g. PostgreSQL) or output_dir, submits are
  // refused with RESOURCE_EXHAUSTED and downloads wait `disk_wait` and try
  // again. `disk` is borrowed; null turns the checks off.
  const DiskSpace* disk = nullptr;
  std::string data_dir;
  int64_t min_free_disk_bytes = int64_t{1} << 30;
  absl::Duration disk_wait = absl::Seconds(30);

  // QUEUED tasks one caller may have; 0 = no limit.
  int64_t max_queued_per_caller = 0;
  // What one caller's tasks may cost per UTC day (budgets.cc), in USD; 0 =
  // no limit. Each backend's own is BackendConfig::daily_budget_usd.
  double daily_budget_usd_per_caller = 0;

  // Told of transitions, provider calls and retries (metrics). Borrowed,
  // outlives the engine; null = none.
  EngineObserver* observer = nullptr;
};

// What one retention pass did.
struct RetentionPass {
  int64_t tasks_deleted = 0;
  int64_t outputs_removed = 0;
  int64_t pages_reclaimed = 0;
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
  // gives RESOURCE_EXHAUSTED for every item; with max_queued_per_caller,
  // the items past their caller's allowance get RESOURCE_EXHAUSTED (the
  // earlier ones of a batch are stored).
  void SubmitAsync(std::vector<store::NewTask> tasks,
                   std::function<void(store::InsertResults)> done) ABSL_LOCKS_EXCLUDED(mu_);

  // Cancels a task that has not finished (its provider task too).
  // FAILED_PRECONDITION for a terminal task, NOT_FOUND for an unknown one.
  absl::StatusOr<Task> Cancel(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);

  // Puts a FAILED or CANCELLED task back in the queue under its id, or has
  // it follow request.adopt_provider_task_id (the owner and lease are this
  // engine's). NOT_FOUND, FAILED_PRECONDITION (transitions.h: ToRetried;
  // also an adopted task of a backend not enabled here, or an image no
  // longer stored), RESOURCE_EXHAUSTED when the queue is full.
  absl::StatusOr<Task> Retry(const std::string& id, RetryRequest request) ABSL_LOCKS_EXCLUDED(mu_);

  // Pauses a backend enabled here, for every process sharing the store:
  // its queued tasks wait, none is sent to the provider; tasks already
  // there are still polled and downloaded. NOT_FOUND for a backend not
  // enabled here (the message lists those that are).
  absl::StatusOr<store::BackendPause> Pause(absl::string_view backend, std::string reason,
                                            std::string caller) ABSL_LOCKS_EXCLUDED(mu_);
  // Lifts the pause (OK when it was not paused). NOT_FOUND as for Pause.
  absl::Status Resume(absl::string_view backend) ABSL_LOCKS_EXCLUDED(mu_);
  // The pause of `backend` as last read (pause_refresh), if it is paused.
  std::optional<store::BackendPause> PauseOf(absl::string_view backend) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Every paused backend, read from the store now (and remembered).
  absl::StatusOr<std::vector<store::BackendPause>> ListPauses() ABSL_LOCKS_EXCLUDED(mu_);
  // Deletes a terminal task (and with `delete_output` its output file);
  // its watchers end. FAILED_PRECONDITION for a task not terminal,
  // NOT_FOUND for an unknown one. Returns the task as it was.
  absl::StatusOr<Task> Delete(const std::string& id, bool delete_output)
      ABSL_LOCKS_EXCLUDED(mu_);

  // One retention pass (output retention, task retention, then giving
  // freed database pages back), in batches of retention_batch. RunOnce
  // starts one every retention_interval on a worker.
  absl::StatusOr<RetentionPass> RunRetention() ABSL_LOCKS_EXCLUDED(mu_);

  // OK, or RESOURCE_EXHAUSTED naming the folder short of space, its free
  // bytes and the minimum (the submit-side check).
  absl::Status CheckDiskSpace() const;

  // Reuse of identical work (reuse.cc). Finishes a follower the store
  // inserted (InsertResult::reused, Task::reused_from) once the task it
  // follows (`source`, read from the store when null) has ended:
  // SUCCEEDED with its own hard link or copy of that task's output, no
  // provider call; back in the queue when that task ended without an
  // output. Unchanged while that task is on its way. Returns the task as
  // stored. Blocks on the store and the disk: never call it on a store
  // thread (SubmitAsync's `done`).
  absl::StatusOr<Task> FinishReuse(const Task& follower, const Task* source = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The daily budgets the store enforces (budgets.cc).
  const store::DailyBudgets& daily_budgets() const { return budgets_; }
  // The engine's clock: its UTC day is the day claims spend on.
  absl::Time Now() const { return clock_.Now(); }

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
    absl::Time next_claim = absl::InfinitePast();  // claim_interval after a short claim
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
  // Downloads the output of `task`, as stored in state DOWNLOADING.
  void FetchTask(Task task);
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

  // pauses.cc: the paused backends as last read from the store.
  absl::Status CheckBackendHere(absl::string_view backend) const;
  // engine.cc: what ToRetried cannot see (backend here, queue room, image).
  absl::Status CheckRetryable(const Task& task, const RetryRequest& request)
      ABSL_LOCKS_EXCLUDED(mu_);
  void RefreshPauses(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces the known pauses; a backend no longer paused may claim again.
  void SetPausesLocked(std::vector<store::BackendPause> pauses) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // budgets.cc.
  store::DailyBudgets MakeDailyBudgets() const;
  bool HasDailyBudgets() const;
  // A claimed task's create never reached the provider: its cost is given
  // back to the day it was claimed.
  void GiveBackSpend(const Task& claimed) ABSL_LOCKS_EXCLUDED(mu_);
  // Reads the day's spend when budgets are set, at most once per
  // pause_refresh (and at once after a day ends or a cost was given back).
  void RefreshSpend(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // Adds what this process just claimed to the day's spend as last read.
  void NoteSpentLocked(const Task& claimed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why `task` waits for a daily budget, or "".
  std::string BudgetWait(const Task& task, absl::Time now) const ABSL_LOCKS_EXCLUDED(mu_);
  // retention.cc.
  // Removes the output file of `task` when it lies in this server's output
  // folder; OK when it is gone already.
  absl::Status RemoveOutputFile(const Task& task) const;
  absl::Status RemoveExpiredOutputs(absl::Time before, RetentionPass& pass);
  absl::Status DeleteExpiredTasks(absl::Time before, RetentionPass& pass);
  // Starts a retention pass on a worker when one is due.
  void MaybeStartRetention(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // The fetch of `task` waits for disk space (`why`) and is tried again
  // after disk_wait, without counting an attempt.
  void WaitForDisk(Task task, const absl::Status& why);
  // The output folder's part of CheckDiskSpace (the fetch-side check).
  absl::Status CheckOutputSpace() const;

  // reuse.cc. `source` null: the followed task is gone.
  absl::StatusOr<Task> ResolveFollower(const Task& follower, const Task* source)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<Task> TakeOutput(const Task& follower, const Task& source)
      ABSL_LOCKS_EXCLUDED(mu_);
  // After `task` ended (Commit): its followers take its output or go.
  void ResolveFollowersOf(const Task& task) ABSL_LOCKS_EXCLUDED(mu_);
  void ResolveAll(std::vector<Task> followers, const std::string& of, const Task* source)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Recovery scans: followers whose task ended, or is gone, meanwhile.
  void ResolveWaitingFollowers() ABSL_LOCKS_EXCLUDED(mu_);

  // engine.cc: commits.
  // Stores `task` (CAS on its version) and publishes it. ABORTED when the
  // task changed meanwhile (logged only for other errors).
  absl::StatusOr<Task> Commit(Task task);
  // After a lost compare-and-set: reloads the task and lets go of it when
  // it has ended meanwhile (a cancel).
  void OnConflict(const std::string& task_id);
  bool Stopping() const ABSL_LOCKS_EXCLUDED(mu_);
  // Per task: OK, or RESOURCE_EXHAUSTED past its caller's allowance. The
  // allowed ones are reserved until CallerInserted.
  std::vector<absl::Status> ReserveCallerSlots(const std::vector<store::NewTask>& tasks,
                                               absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // `callers[i]` submitted the task of results[i].
  void CallerInserted(const std::vector<std::string>& callers, const store::InsertResults& results)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CallerLeftQueue(const std::string& caller) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
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
  const store::DailyBudgets budgets_;

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
  std::map<std::string, store::BackendPause> pauses_ ABSL_GUARDED_BY(mu_);
  absl::Time next_pause_refresh_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t queued_estimate_ ABSL_GUARDED_BY(mu_) = 0;
  // Kept QUEUED counts of callers (max_queued_per_caller): read from the
  // store at most once a second per caller, kept up to date in between by
  // this process's submits, claims and cancels.
  struct CallerCount {
    int64_t queued = 0;
    int64_t reserved = 0;  // allowed, being inserted
    absl::Time checked = absl::InfinitePast();
  };
  absl::flat_hash_map<std::string, CallerCount> caller_counts_ ABSL_GUARDED_BY(mu_);
  absl::Time queued_checked_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time next_retention_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool retention_running_ ABSL_GUARDED_BY(mu_) = false;
  // The day's spend as last read (RefreshSpend), by (kind, name).
  std::map<std::pair<store::DailySpend::Kind, std::string>, int64_t> spend_ ABSL_GUARDED_BY(mu_);
  absl::Time spend_read_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
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
