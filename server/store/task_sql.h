// The statements on `tasks`, `task_labels` and `blobs` that every engine
// runs, written once and rendered for a Dialect. Each comment gives the
// parameters in order; statements returning tasks return TaskColumnList().
#ifndef VIDEOTASK_SERVER_STORE_TASK_SQL_H_
#define VIDEOTASK_SERVER_STORE_TASK_SQL_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "server/store/dialect.h"

namespace videotask::store::internal {

// Parameters of ClaimSet (claim_one binds the task id as parameter 1).
inline constexpr int kClaimOwner = 2;
inline constexpr int kClaimLeaseExpiry = 3;
inline constexpr int kClaimNow = 4;

struct TaskStatements {
  explicit TaskStatements(const Dialect& dialect);

  const Dialect& dialect;
  const std::string columns;               // TaskColumnList()
  const std::string insert;                // WriteTaskRow
  const std::string select_by_id;          // id
  const std::string select_by_request_id;  // request_id
  // WriteTaskUpdate. A lease kept by the same owner is never shortened by
  // a stale copy.
  const std::string update;
  // Where update and claim_one return no row (Dialect::ReturningRow): id ->
  // the row the connection's last statement changed, none when it changed
  // no row (SQLite's changes()).
  const std::string read_back;
  const std::string version_of;        // id -> version
  const std::string list_recoverable;  // owner, now
  const std::string renew;             // owner, lease_expiry
  const std::string next_queued;       // backend -> next_attempt_time
  const std::string image_in_use;      // sha256 -> a row when a task not SUCCEEDED uses it
  const std::string read_blob;         // sha256 -> data
  const std::string delete_blob;       // sha256
  const std::string stub_counter;      // base -> next suffix to try
  // Retention (task_store.h DeleteEnded, Delete, ListKeptOutputs).
  const std::string delete_ended;       // ended_before, limit
  const std::string delete_one;         // id
  const std::string list_kept_outputs;  // ended_before, limit
  // base: drops its stub counter when no task has that stub (counters are
  // only where probing starts).
  const std::string forget_stub_counter;
  // The fair claim (TaskTable::Claim), each over an index of SchemaCallers:
  // the callers with QUEUED tasks at a backend (backend), the slots each
  // caller holds there (backend -> caller, count), a caller's next claimable
  // tasks (backend, caller, now, limit -> id, priority, create_time,
  // estimated_cost_micros; rows
  // locked, skipping locked ones, where the engine can), and the claim of
  // one picked task (id, owner, lease_expiry, now; ClaimSet's numbers).
  const std::string claim_callers;
  const std::string claim_active;
  const std::string claim_head;
  const std::string claim_one;
  const std::string count_queued_of;  // caller -> count
  // Reuse (reuse_key.h): reuse_key -> the task an identical submit takes
  // (SUCCEEDED with its output kept first, newest; else the live task
  // furthest along that follows none; on PostgreSQL locked FOR SHARE, so
  // its end waits for the insert and then sees the follower).
  const std::string find_identical;
  const std::string list_followers_of;  // reused_from, limit
  const std::string list_followers;     // limit
  // The SET list that claims a row (kClaimOwner, kClaimLeaseExpiry,
  // kClaimNow); `table` qualifies the column reads ("t." or "").
  std::string ClaimSet(absl::string_view table) const;
  // task_id, create_time, then key and value per label.
  std::string InsertLabels(size_t count) const;
};

}  // namespace videotask::store::internal

#endif  // VIDEOTASK_SERVER_STORE_TASK_SQL_H_
