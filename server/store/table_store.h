// The part of a TaskStore that is the same for every SQL engine: the reads,
// answered by the store core (task_rows.h) on a session the engine lends.
#ifndef VIDEOTASK_SERVER_STORE_TABLE_STORE_H_
#define VIDEOTASK_SERVER_STORE_TABLE_STORE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/backend_pauses.h"
#include "server/store/dialect.h"
#include "server/store/sql_session.h"
#include "server/store/task_rows.h"
#include "server/store/task_store.h"

namespace videotask::store::internal {

class TableStore : public TaskStore {
 public:
  absl::StatusOr<Task> Get(absl::string_view id) override;
  absl::StatusOr<ListPage> List(const ListQuery& query) override;
  absl::StatusOr<std::vector<Task>> ListRecoverable(absl::string_view owner,
                                                    absl::Time now) override;
  absl::StatusOr<absl::Time> NextQueuedTime(absl::string_view backend) override;
  absl::StatusOr<int64_t> CountQueued() override;
  absl::StatusOr<BackendPause> PauseBackend(const BackendPause& pause) override;
  absl::StatusOr<bool> ResumeBackend(absl::string_view backend) override;
  absl::StatusOr<std::vector<BackendPause>> ListBackendPauses() override;
  absl::StatusOr<std::vector<Task>> ListKeptOutputs(absl::Time ended_before, int limit) override;
  absl::StatusOr<int64_t> CountQueuedOf(absl::string_view caller) override;
  absl::StatusOr<std::vector<Task>> ListFollowers(absl::string_view of, int limit) override;

  absl::StatusOr<std::vector<StateCount>> CountByState() override;
  absl::StatusOr<std::vector<OldestQueued>> OldestQueuedTimes() override;

  // The plan of List's statement for `query` (TaskTable::ExplainList).
  absl::StatusOr<std::vector<std::string>> ExplainList(const ListQuery& query);
  void SetOutboxPolicy(const OutboxPolicy* policy) override { table_.SetOutboxPolicy(policy); }
  absl::StatusOr<std::vector<OutboxMessage>> ClaimOutbox(absl::Time now, int limit,
                                                         absl::string_view owner,
                                                         absl::Time lease_expiry) override;
  absl::Status FinishDelivery(const DeliveryResult& result) override;
  absl::StatusOr<std::vector<OutboxMessage>> ListDeliveries(absl::string_view task_id) override;
  void SetDailyBudgets(DailyBudgets budgets) override ABSL_LOCKS_EXCLUDED(budgets_mu_);
  absl::StatusOr<std::vector<DailySpend>> ListDailySpend(absl::Time day) override;
  absl::Status RefundDailySpend(const Task& task, absl::Time claimed) override;

 protected:
  explicit TableStore(const Dialect& dialect) : table_(dialect), pauses_(dialect), dialect_(dialect) {}

  // Runs `fn` with a session for reads, on the calling thread (SQLite: a
  // reader connection; PostgreSQL: a pooled one). Thread-safe.
  virtual absl::Status WithReadSession(absl::FunctionRef<absl::Status(SqlSession&)> fn) = 0;
  // Runs `fn` inside a write transaction that commits durably when `fn`
  // succeeds and rolls back otherwise (SQLite: on the writer thread;
  // PostgreSQL: a pooled connection). Blocks until then.
  virtual absl::Status WithWriteSession(std::function<absl::Status(SqlSession&)> fn) = 0;

  // The budgets a claim enforces (SetDailyBudgets); null = none set.
  std::shared_ptr<const DailyBudgets> Budgets() const ABSL_LOCKS_EXCLUDED(budgets_mu_);

  TaskTable table_;  // non-const only for SetOutboxPolicy
  const PauseTable pauses_;
  const Dialect& dialect_;

 private:
  mutable absl::Mutex budgets_mu_;
  std::shared_ptr<const DailyBudgets> budgets_ ABSL_GUARDED_BY(budgets_mu_);

  // `read`'s answer on a read session.
  template <typename T, typename Read>
  absl::StatusOr<T> OnReadSession(Read read);
};

}  // namespace videotask::store::internal

#endif  // VIDEOTASK_SERVER_STORE_TABLE_STORE_H_
