// The store core: every operation on task rows whose meaning is the same in
// each engine, written once over a SqlSession and rendered through the
// engine's Dialect. An engine decides where a session comes from (which
// connection, which thread, which transaction) and adds what is its own
// through InsertHooks (image storage, stub allocation, blob cleanup).
#ifndef VIDEOTASK_SERVER_STORE_TASK_ROWS_H_
#define VIDEOTASK_SERVER_STORE_TASK_ROWS_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/domain/task.h"
#include "server/store/daily_spend.h"
#include "server/store/dialect.h"
#include "server/store/outbox.h"
#include "server/store/sql_session.h"
#include "server/store/task_sql.h"
#include "server/store/task_store.h"

namespace videotask::store::internal {

// What an engine does its own way while TaskTable::Insert runs (inside the
// insert's transaction, on the same session).
class InsertHooks {
 public:
  virtual ~InsertHooks() = default;
  // Stores the image bytes of a new task before its row is written.
  virtual absl::Status StoreImage(const Task& task, absl::string_view bytes) = 0;
  // A free target_filename_stub for `base` (see ProbeStub).
  virtual absl::StatusOr<std::string> AllocateStub(const std::string& base) = 0;
  // The inserted task is terminal: its image may have no live user left.
  virtual absl::Status ReleaseImage(const std::string& sha256) = 0;
};

// base, base_2, base_3, ...: starting at suffix `next` (0 or 1 = the base
// itself), the first candidate `is_free` accepts. `next` becomes the suffix
// after the one taken.
absl::StatusOr<std::string> ProbeStub(
    const std::string& base, int64_t& next,
    absl::FunctionRef<absl::StatusOr<bool>(const std::string&)> is_free);

// One caller's side of a fair claim at a backend.
struct ClaimCandidate {
  std::string id;
  int priority = 0;
  absl::Time create_time = absl::InfinitePast();
  int64_t cost_micros = 0;  // estimated cost (daily budgets)
};
struct CallerQueue {
  std::string caller;
  int64_t active = 0;                  // tasks SUBMITTING..DOWNLOADING at the backend
  std::vector<ClaimCandidate> next;    // its claimable tasks, best first
};

// Up to `limit` task ids in claim order. Priority first: the best next task
// of any caller at the highest priority left. Among the callers whose next
// task has that priority, the one holding the fewest slots (counting the
// ones picked so far) goes first, ties to the older task: callers with
// equal shares take turns, round robin, and a caller with a long queue
// cannot hold a slot another caller's task is waiting for.
std::vector<std::string> PickFairly(std::vector<CallerQueue> queues, int limit);

class TaskTable {
 public:
  explicit TaskTable(const Dialect& dialect) : sql_(dialect), outbox_(dialect), spend_(dialect) {}

  const TaskStatements& sql() const { return sql_; }
  const OutboxTable& outbox() const { return outbox_; }
  const SpendTable& spend() const { return spend_; }
  // The webhook rows Insert and Update write with each change of state
  // (borrowed; nullptr = none). Set before the first write.
  void SetOutboxPolicy(const OutboxPolicy* policy) { outbox_policy_.store(policy); }

  // The tasks a statement returns, in its order.
  absl::StatusOr<std::vector<Task>> Select(SqlSession& session, const std::string& sql,
                                           SqlSession::Bind bind) const;
  // The row an UPDATE of task `id` (sql_.update or sql_.claim_one) changed,
  // returned by the statement or read back after it (TaskStatements::
  // read_back); none when it changed no row.
  absl::StatusOr<std::vector<Task>> UpdateRow(SqlSession& session, const std::string& sql,
                                              absl::string_view id, SqlSession::Bind bind) const;

  // task_store.h's contracts, on one session.
  absl::StatusOr<Task> Get(SqlSession& session, absl::string_view id) const;
  absl::StatusOr<ListPage> List(SqlSession& session, const ListQuery& query) const;
  // The engine's plan for the statement List runs for `query`, bound the
  // same way (SQLite: EXPLAIN QUERY PLAN, one line per step, indented by
  // depth; PostgreSQL: EXPLAIN's lines). For benchmarks and operators.
  absl::StatusOr<std::vector<std::string>> ExplainList(SqlSession& session,
                                                       const ListQuery& query) const;
  absl::StatusOr<std::vector<Task>> ListRecoverable(SqlSession& session, absl::string_view owner,
                                                    absl::Time now) const;
  absl::StatusOr<absl::Time> NextQueuedTime(SqlSession& session, absl::string_view backend) const;
  absl::StatusOr<int64_t> CountQueued(SqlSession& session) const;
  absl::StatusOr<int64_t> CountQueuedOf(SqlSession& session, absl::string_view caller) const;
  // ClaimQueued's contract with the slots of `backend` shared fairly between
  // its callers (PickFairly), inside the session's transaction. Reads one
  // index probe per caller with QUEUED tasks at the backend; on PostgreSQL
  // the candidate rows are locked, skipping rows another claim holds.
  // Tasks that do not fit the daily `budgets` (null = none) are skipped
  // and the claimed tasks' costs are added to the day's spend (ClaimBudget).
  absl::StatusOr<std::vector<Task>> Claim(SqlSession& session, absl::string_view backend,
                                          int limit, absl::Time now, absl::string_view owner,
                                          absl::Time lease_expiry,
                                          const DailyBudgets* budgets = nullptr) const;
  absl::Status RenewLeases(SqlSession& session, absl::string_view owner,
                           absl::Time lease_expiry) const;

  // Request-id idempotency, image, stub, the row and its labels. `clock`
  // stamps create_time/update_time when unset; version becomes 1.
  absl::StatusOr<InsertResult> Insert(SqlSession& session, InsertHooks& hooks, const Clock& clock,
                                      const NewTask& item) const;
  // Compare-and-set on version; ABORTED when it changed, NOT_FOUND. A change
  // of state writes the outbox rows of the policy in the same transaction.
  absl::StatusOr<Task> Update(SqlSession& session, const Task& task) const;

  // Retention (task_store.h); the caller releases the images of the
  // deleted tasks.
  absl::StatusOr<std::vector<Task>> DeleteEnded(SqlSession& session, absl::Time ended_before,
                                                int limit) const;
  absl::StatusOr<Task> Delete(SqlSession& session, absl::string_view id) const;
  // What deleted tasks leave behind: their stub counters no task uses any
  // more, so the counters do not grow with every name ever seen (they are
  // hints; the stubs stay unique, and output files are never overwritten),
  // and their delivered and failed webhook messages.
  absl::Status ForgetDeleted(SqlSession& session, const std::vector<Task>& deleted) const;
  absl::StatusOr<std::vector<Task>> ListKeptOutputs(SqlSession& session, absl::Time ended_before,
                                                    int limit) const;

  // task_store.h ListFollowers.
  absl::StatusOr<std::vector<Task>> ListFollowers(SqlSession& session, absl::string_view of,
                                                  int limit) const;

  // Whether a task that may still need the image (any but SUCCEEDED: live,
  // or FAILED / CANCELLED and so retryable) uses it.
  absl::StatusOr<bool> ImageInUse(SqlSession& session, absl::string_view sha256) const;

 private:
  // The task stored under task.request_id, when there is one with the same
  // spec; ALREADY_EXISTS for another spec.
  absl::StatusOr<std::vector<Task>> FindByRequestId(SqlSession& session, const Task& task) const;
  absl::Status InsertLabels(SqlSession& session, const Task& task) const;
  // Reuse: keys `task` and, when an identical task is found, makes it its
  // follower (and `result.reused` the task when SUCCEEDED).
  absl::Status MatchIdentical(SqlSession& session, Task& task, InsertResult& result) const;
  // The callers' sides of a claim of `backend`.
  absl::StatusOr<std::vector<CallerQueue>> ClaimQueues(SqlSession& session,
                                                       absl::string_view backend, int limit,
                                                       absl::Time now) const;
  // SQL and parameter numbers of a List page.
  std::string ListSql(const ListQuery& query, size_t states) const;
  std::string ListByLabelSql(const ListQuery& query, size_t states) const;

  const TaskStatements sql_;
  const OutboxTable outbox_;
  std::atomic<const OutboxPolicy*> outbox_policy_{nullptr};
  const SpendTable spend_;
};

}  // namespace videotask::store::internal

#endif  // VIDEOTASK_SERVER_STORE_TASK_ROWS_H_
