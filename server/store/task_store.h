// The durable task queue. SqliteTaskStore is the embedded implementation; the
// interface leaves room for a PostgreSQL one shared by several replicas.
#ifndef VIDEOTASK_SERVER_STORE_TASK_STORE_H_
#define VIDEOTASK_SERVER_STORE_TASK_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/domain/task.h"

namespace videotask::store {

// A task to insert: `task` is complete but for target_filename_stub's
// uniqueness suffix and version (the store assigns both).
struct NewTask {
  Task task;  // state QUEUED; task.target_filename_stub holds the base stub
  // The image bytes when task.image_sha256 is set; stored content-addressed
  // (one copy per digest) and durable before Insert reports success.
  std::string image_bytes;
  // Reuse of identical work (store/reuse_key.h): the store keys the task
  // and, when an identical task is SUCCEEDED with its output kept or still
  // on its way (QUEUED..DOWNLOADING, following none), stores this one
  // QUEUED following it (reused_from, never claimed, see InsertResult).
  bool reuse = false;
};

struct InsertResult {
  Task task;
  // False when request_id matched an existing task with the same
  // spec_fingerprint (the existing task is returned).
  bool created = true;
  // The SUCCEEDED task whose output the inserted follower may take at once
  // (Engine::FinishReuse); null otherwise (a pointer: results stay small).
  std::shared_ptr<const Task> reused;
};

using InsertResults = std::vector<absl::StatusOr<InsertResult>>;

// Position after the last task of a page (newest-first order).
struct ListCursor {
  absl::Time create_time;
  std::string id;
};

struct ListQuery {
  int page_size = 50;                 // validated by the caller: 1..1000
  std::vector<TaskState> states;      // empty = any
  std::string backend;                // "" = any
  std::map<std::string, std::string> labels;  // all must match
  std::optional<ListCursor> after;
  std::string caller;  // "" = any
};

struct ListPage {
  std::vector<Task> tasks;  // create_time DESC, id DESC
  bool has_more = false;
};

// A backend held by an operator: its queued tasks wait, none is sent to the
// provider; tasks already there are still followed.
struct BackendPause {
  std::string backend;
  std::string reason;
  std::string caller;  // who paused it
  absl::Time since = absl::InfinitePast();
};

// Tasks of one backend in one state (metrics).
struct StateCount {
  std::string backend;
  TaskState state = TaskState::kQueued;
  int64_t count = 0;
};

// When the oldest QUEUED task of a backend was created (metrics).
struct OldestQueued {
  std::string backend;
  absl::Time create_time;
};

// Spending limits of one UTC day, in micro-dollars; 0 = no limit.
// ClaimQueued claims no task whose estimated cost would take a backend's
// or a caller's spend of the day past its limit.
struct DailyBudgets {
  std::map<std::string, int64_t> backend_micros;  // by backend name
  int64_t per_caller_micros = 0;                  // each caller's
};

// What one backend or caller has spent on one UTC day.
struct DailySpend {
  enum class Kind { kBackend, kCaller };
  Kind kind = Kind::kBackend;
  std::string name;
  int64_t spent_micros = 0;
};

// What a store reports about its own work, for metrics. Injected through the
// store's options; calls come from store threads, so implementations are
// thread-safe and cheap (no I/O, no long locks).
class StoreObserver {
 public:
  virtual ~StoreObserver() = default;
  // One group-commit transaction: its duration, the writes it held (tasks
  // inserted or updated) and whether it committed.
  virtual void OnCommit(absl::Duration elapsed, int writes, bool committed) = 0;
};

// Webhooks: one event of a task for one URL, a row of the outbox that the
// task's transition wrote in its own transaction.
enum class DeliveryState : int { kPending = 1, kDelivered = 2, kFailed = 3 };

struct OutboxMessage {
  std::string id;          // "msg_...": the webhook-id of every try
  std::string task_id;
  std::string url;
  std::string event_type;  // "task.succeeded", "task.running", ...
  absl::Time event_time = absl::InfinitePast();
  std::string payload;     // the request body, fixed when the event happened
  DeliveryState state = DeliveryState::kPending;
  int attempts = 0;
  int last_status_code = 0;  // 0 = no answer
  std::string last_error;
  absl::Time next_attempt_time = absl::InfinitePast();
  absl::Time delivered_time = absl::InfinitePast();
};

// Which outbox rows a stored change of a task makes. Given to the store by
// the composition root before the first write; called inside the
// transaction of each insert and update (on store threads: thread-safe, no
// I/O, no locks held long).
class OutboxPolicy {
 public:
  virtual ~OutboxPolicy() = default;
  // `task` as stored; `from` the state it had before this change (nullopt
  // for an insert). Only a change of state makes events; the messages come
  // back PENDING, due at once.
  virtual std::vector<OutboxMessage> OnStored(const Task& task,
                                              std::optional<TaskState> from) const = 0;
};

// The end of one delivery try of a claimed message (ClaimOutbox).
struct DeliveryResult {
  std::string id;
  std::string owner;  // who claimed it
  DeliveryState state = DeliveryState::kPending;
  int attempts = 0;
  int last_status_code = 0;
  std::string last_error;
  absl::Time next_attempt_time = absl::InfinitePast();  // when still PENDING
  absl::Time delivered_time = absl::InfinitePast();     // when DELIVERED
};

class TaskStore {
 public:
  virtual ~TaskStore() = default;

  // Inserts tasks in one transaction shared with concurrent callers (group
  // commit); `done` runs once that transaction is durable, on a store thread
  // (it must not block). One result per task, in order:
  //  - the stored task (created = true);
  //  - a task with the same non-empty request_id exists: with an equal
  //    spec_fingerprint that task (created = false), else ALREADY_EXISTS;
  // target_filename_stub gets "_2", "_3", ... when the base is taken.
  // May block on file I/O (large image blobs) before returning.
  virtual void InsertAsync(std::vector<NewTask> tasks,
                           std::function<void(InsertResults)> done) = 0;
  // Blocking form of InsertAsync.
  InsertResults Insert(std::vector<NewTask> tasks);

  // NOT_FOUND for an unknown id.
  virtual absl::StatusOr<Task> Get(absl::string_view id) = 0;
  virtual absl::StatusOr<ListPage> List(const ListQuery& query) = 0;

  // Writes every mutable field of `task` (all but id, request_id, spec,
  // create_time, image and stub) when the stored version equals
  // task.version, in one transaction; returns the stored task with the
  // version bumped. ABORTED when the task changed meanwhile; NOT_FOUND.
  // When the new state is terminal and no other non-terminal task uses the
  // image, the image blob is deleted.
  virtual absl::StatusOr<Task> Update(const Task& task) = 0;

  // One transaction: takes up to `limit` QUEUED tasks of `backend` whose
  // next_attempt_time <= now and whose lease is free or expired, highest
  // priority first, the slots shared fairly between callers within a
  // priority (the caller holding the fewest tasks SUBMITTING..DOWNLOADING
  // at the backend first, ties to the oldest task), oldest first within a
  // caller, and moves them to SUBMITTING with the lease (owner,
  // lease_expiry), attempt_count + 1 and start_time set when unset. Returns
  // them as stored, in claim order. A task whose estimated cost does not
  // fit in what is left of its backend's or caller's daily budget for the
  // UTC day of `now` (SetDailyBudgets) is skipped; the cost of each claimed
  // task is added to the day's spend in the same transaction.
  virtual absl::StatusOr<std::vector<Task>> ClaimQueued(absl::string_view backend, int limit,
                                                        absl::Time now,
                                                        absl::string_view owner,
                                                        absl::Time lease_expiry) = 0;

  // Extends the lease of every non-terminal task held by `owner`.
  virtual absl::Status RenewLeases(absl::string_view owner, absl::Time lease_expiry) = 0;

  // Tasks the engine must pick up after a start: non-terminal tasks not
  // QUEUED, plus CANCELLED ones with provider_cancel_pending, whose lease is
  // free, expired or held by `owner`.
  virtual absl::StatusOr<std::vector<Task>> ListRecoverable(absl::string_view owner,
                                                            absl::Time now) = 0;

  // The earliest next_attempt_time among QUEUED tasks of `backend`, or
  // InfiniteFuture when none is queued.
  virtual absl::StatusOr<absl::Time> NextQueuedTime(absl::string_view backend) = 0;

  // QUEUED tasks (all backends), for the queue-full check and metrics.
  virtual absl::StatusOr<int64_t> CountQueued() = 0;
  // QUEUED tasks of one caller (all backends), for --max_queued_per_caller:
  // an index range of that caller's QUEUED tasks.
  virtual absl::StatusOr<int64_t> CountQueuedOf(absl::string_view caller) = 0;

  // Limits of one backend that a store shared by several processes enforces
  // globally in ClaimQueued (at most `max_concurrency` tasks SUBMITTING,
  // RUNNING or DOWNLOADING, creations at least `min_submit_interval`
  // apart). A single-process store may ignore them: the engine enforces the
  // same limits locally.
  virtual void SetBackendLimits(absl::string_view backend, int max_concurrency,
                                absl::Duration min_submit_interval) {}

  // The daily budgets ClaimQueued enforces from now on. A store shared by
  // several processes enforces them globally: the spend of the day is kept
  // in the store (daily_spend) and checked and added in the claim's own
  // transaction, so replicas together never pass a limit.
  virtual void SetDailyBudgets(DailyBudgets budgets) {}
  // What each backend and caller spent on the UTC day of `day` (rows with
  // nothing spent may be left out), backends first, by name.
  virtual absl::StatusOr<std::vector<DailySpend>> ListDailySpend(absl::Time day) {
    return std::vector<DailySpend>();
  }
  // Gives back the estimated cost of `task` (its backend's and its
  // caller's) to the spend of the UTC day of `claimed`, the time of its
  // claim: its create definitely never reached the provider. Never takes a
  // spend below 0.
  virtual absl::Status RefundDailySpend(const Task& task, absl::Time claimed) {
    return absl::OkStatus();
  }

  // Called with tasks changed by other processes sharing the store, so their
  // watchers see the change. A single-process store never calls it.
  virtual void SetChangeListener(std::function<void(const Task&)> listener) {}

  // Records that `pause.backend` is paused, durably and for every process
  // sharing the store. Pausing a paused backend replaces its reason and
  // caller and keeps its `since`. Returns the pause as stored.
  virtual absl::StatusOr<BackendPause> PauseBackend(const BackendPause& pause) = 0;
  // Lifts the pause of `backend`; false when it was not paused.
  virtual absl::StatusOr<bool> ResumeBackend(absl::string_view backend) = 0;
  // Every paused backend, by name.
  virtual absl::StatusOr<std::vector<BackendPause>> ListBackendPauses() = 0;

  // Retention. Deletes up to `limit` terminal tasks whose end_time is before
  // `ended_before`, oldest end first, with their labels, in one
  // transaction, and returns them as they were. Images that no remaining
  // task may still need (any but SUCCEEDED) are deleted too; output files are the caller's business.
  // CANCELLED tasks whose provider cancel is still pending are kept.
  // Several processes sharing the store may run it at once: each task is
  // deleted (and returned) by one of them.
  virtual absl::StatusOr<std::vector<Task>> DeleteEnded(absl::Time ended_before, int limit) = 0;

  // Deletes one task (as DeleteEnded does) and returns it as it was.
  // NOT_FOUND for an unknown id; FAILED_PRECONDITION when it is not
  // terminal, or CANCELLED with its provider cancel still pending.
  virtual absl::StatusOr<Task> Delete(absl::string_view id) = 0;

  // Up to `limit` SUCCEEDED tasks ended before `ended_before` whose output
  // file is still kept (output_path set, output_removed_time unset), oldest
  // end first.
  virtual absl::StatusOr<std::vector<Task>> ListKeptOutputs(absl::Time ended_before,
                                                            int limit) = 0;

  // Gives up to `max_pages` free database pages back to the file system
  // (SQLite's incremental vacuum); returns how many it gave back. Engines
  // that manage their own space (PostgreSQL's autovacuum) return 0.
  virtual absl::StatusOr<int64_t> ReclaimSpace(int64_t max_pages) { return 0; }
  // Tasks per (backend, state), zero counts left out. Kept as counts by the
  // database (triggers), so this costs the same at any queue size; a shared
  // store counts every process's tasks.
  virtual absl::StatusOr<std::vector<StateCount>> CountByState() {
    return absl::UnimplementedError("this store keeps no state counts");
  }
  // The oldest QUEUED task of each backend that has one.
  virtual absl::StatusOr<std::vector<OldestQueued>> OldestQueuedTimes() {
    return absl::UnimplementedError("this store keeps no state counts");
  }

  // Followers (NewTask::reuse): QUEUED tasks waiting for `of` (reused_from),
  // or for any task when `of` is "", oldest first, at most `limit`.
  virtual absl::StatusOr<std::vector<Task>> ListFollowers(absl::string_view of, int limit) = 0;
  // Webhook outbox. `policy` (borrowed, outlives the store) decides the
  // rows each insert and update writes in its own transaction; set once,
  // before the first write. Without one, no rows are written.
  virtual void SetOutboxPolicy(const OutboxPolicy* policy) {}
  // One transaction: up to `limit` PENDING messages due at `now` whose lease
  // is free or expired, earliest due first, leased to `owner` until
  // `lease_expiry`. Several processes sharing the store may claim at once:
  // each message goes to one of them.
  virtual absl::StatusOr<std::vector<OutboxMessage>> ClaimOutbox(absl::Time now, int limit,
                                                                 absl::string_view owner,
                                                                 absl::Time lease_expiry) {
    return absl::UnimplementedError("this store keeps no webhook outbox");
  }
  // Records a try of a message `result.owner` holds and frees its lease.
  // ABORTED when the lease was lost (another process may deliver it);
  // NOT_FOUND for an unknown id.
  virtual absl::Status FinishDelivery(const DeliveryResult& result) {
    return absl::UnimplementedError("this store keeps no webhook outbox");
  }
  // The messages of one task, oldest event first, without their payloads.
  virtual absl::StatusOr<std::vector<OutboxMessage>> ListDeliveries(absl::string_view task_id) {
    return std::vector<OutboxMessage>{};
  }

  // The image bytes stored under a digest; NOT_FOUND once deleted.
  virtual absl::StatusOr<std::string> ReadImage(absl::string_view sha256) = 0;
};

}  // namespace videotask::store

#endif  // VIDEOTASK_SERVER_STORE_TASK_STORE_H_
