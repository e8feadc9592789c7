// The webhook outbox: one row per event of a task and URL, written by the
// task's own insert or update (same transaction), claimed with a lease by
// the delivery workers of any process sharing the store, and finished with
// the outcome of each try.
#ifndef VIDEOTASK_SERVER_STORE_OUTBOX_H_
#define VIDEOTASK_SERVER_STORE_OUTBOX_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/store/dialect.h"
#include "server/store/schema.h"
#include "server/store/sql_session.h"
#include "server/store/task_store.h"

namespace videotask::store::internal {

// The columns of webhook_outbox, in the order every statement uses.
enum OutboxColumn : int {
  kOutId,
  kOutTaskId,
  kOutUrl,
  kOutEventType,
  kOutEventTime,
  kOutPayload,
  kOutState,
  kOutAttempts,
  kOutLastStatus,
  kOutLastError,
  kOutNextAttempt,
  kOutDeliveredTime,
  kOutLeaseOwner,
  kOutLeaseExpiry,
  kNumOutboxColumns,
};

// The column definitions of webhook_outbox (kNumOutboxColumns of them).
const ColumnDef* OutboxColumnDefs();

class OutboxTable {
 public:
  explicit OutboxTable(const Dialect& dialect);

  // The rows `policy` makes for `task` (as stored, `from` its state
  // before), inserted on `session` inside the caller's transaction.
  absl::Status Write(SqlSession& session, const OutboxPolicy* policy, const Task& task,
                     std::optional<TaskState> from) const;
  // task_store.h's contracts, on one session (inside a write transaction for
  // Claim and Finish; PostgreSQL skips rows another claim holds).
  absl::StatusOr<std::vector<OutboxMessage>> Claim(SqlSession& session, absl::Time now, int limit,
                                                   absl::string_view owner,
                                                   absl::Time lease_expiry) const;
  absl::Status Finish(SqlSession& session, const DeliveryResult& result) const;
  absl::StatusOr<std::vector<OutboxMessage>> ListForTask(SqlSession& session,
                                                         absl::string_view task_id) const;
  // With a deleted task (retention, DeleteTask), in its transaction: its
  // delivered and failed messages go too. Pending ones stay until they are
  // delivered or given up (retries end long before retention's default).
  absl::Status ForgetEnded(SqlSession& session, absl::string_view task_id) const;

 private:
  const std::string insert_;
  const std::string claim_;
  const std::string finish_;
  const std::string exists_;
  const std::string list_;
  const std::string forget_;
};

}  // namespace videotask::store::internal

#endif  // VIDEOTASK_SERVER_STORE_OUTBOX_H_
