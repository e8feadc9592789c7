// The durable task queue. SqliteTaskStore is the embedded implementation; the
// interface leaves room for a PostgreSQL one shared by several replicas.
#ifndef VIDEOTASK_SERVER_STORE_TASK_STORE_H_
#define VIDEOTASK_SERVER_STORE_TASK_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
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
};

struct InsertResult {
  Task task;
  // False when request_id matched an existing task with the same
  // spec_fingerprint (the existing task is returned).
  bool created = true;
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
};

struct ListPage {
  std::vector<Task> tasks;  // create_time DESC, id DESC
  bool has_more = false;
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
  // priority first then oldest first, and moves them to SUBMITTING with the
  // lease (owner, lease_expiry), attempt_count + 1 and start_time set when
  // unset. Returns them as stored.
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

  // Limits of one backend that a store shared by several processes enforces
  // globally in ClaimQueued (at most `max_concurrency` tasks SUBMITTING,
  // RUNNING or DOWNLOADING, creations at least `min_submit_interval`
  // apart). A single-process store may ignore them: the engine enforces the
  // same limits locally.
  virtual void SetBackendLimits(absl::string_view backend, int max_concurrency,
                                absl::Duration min_submit_interval) {}

  // Called with tasks changed by other processes sharing the store, so their
  // watchers see the change. A single-process store never calls it.
  virtual void SetChangeListener(std::function<void(const Task&)> listener) {}

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

  // The image bytes stored under a digest; NOT_FOUND once deleted.
  virtual absl::StatusOr<std::string> ReadImage(absl::string_view sha256) = 0;
};

}  // namespace videotask::store

#endif  // VIDEOTASK_SERVER_STORE_TASK_STORE_H_
