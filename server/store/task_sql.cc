#include "server/store/task_sql.h"

#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/store/task_row.h"

namespace videotask::store::internal {
namespace {

std::string InsertSql(const Dialect& d) {
  std::vector<std::string> params;
  for (int i = 0; i < kNumColumns; ++i) params.push_back(d.Param(i + 1));
  return absl::StrCat("INSERT INTO tasks (", TaskColumnList(), ") VALUES (",
                      absl::StrJoin(params, ", "), ")");
}

// Parameters: WriteTaskUpdate (1 id, 2 version, then kUpdatedColumns).
std::string UpdateSql(const Dialect& d) {
  int owner_param = 0;
  std::vector<std::string> sets;
  for (size_t i = 0; i < std::size(kUpdatedColumns); ++i) {
    const TaskColumn column = kUpdatedColumns[i];
    const int param = 3 + static_cast<int>(i);
    if (column == kLeaseOwner) {
      owner_param = param;
      sets.push_back(absl::StrCat("lease_owner = ", d.Param(param, "text")));
    } else if (column == kLeaseExpiry) {
      // A lease kept by the same owner is never shortened by a stale copy.
      const std::string owner = d.Param(owner_param, "text");
      const std::string expiry = d.Param(param, "bigint");
      sets.push_back(absl::StrCat("lease_expiry = CASE WHEN ", owner, " <> '' AND lease_owner = ",
                                  owner, " AND lease_expiry IS NOT NULL AND ", expiry,
                                  " IS NOT NULL AND lease_expiry > ", expiry,
                                  " THEN lease_expiry ELSE ", expiry, " END"));
    } else {
      sets.push_back(absl::StrCat(TaskColumnName(column), " = ", d.Param(param)));
    }
  }
  return absl::StrCat("UPDATE tasks SET ", absl::StrJoin(sets, ", "),
                      ", version = version + 1 WHERE id = ", d.Param(1),
                      " AND version = ", d.Param(2), d.ReturningRow(TaskColumnList()));
}

// A loose index scan of tasks_caller_claim: one index probe per caller.
std::string ClaimCallersSql(const Dialect& d) {
  const std::string backend = d.Param(1, "text");
  return absl::StrCat(
      "WITH RECURSIVE c(caller) AS (SELECT MIN(caller) FROM tasks WHERE state = 1 AND backend = ",
      backend,
      " UNION ALL SELECT (SELECT MIN(t.caller) FROM tasks t WHERE t.state = 1 AND t.backend = ",
      backend, " AND t.caller > c.caller) FROM c WHERE c.caller IS NOT NULL)",
      " SELECT caller FROM c WHERE caller IS NOT NULL");
}

std::string ClaimHeadSql(const Dialect& d) {
  const std::string now = d.Param(3, "bigint");
  return absl::StrCat("SELECT id, priority, create_time, estimated_cost_micros FROM tasks WHERE state = 1 AND backend = ",
                      d.Param(1), " AND caller = ", d.Param(2),
                      " AND (next_attempt_time IS NULL OR next_attempt_time <= ", now,
                      ") AND (lease_owner = '' OR lease_expiry IS NULL OR lease_expiry <= ", now,
                      ") ORDER BY priority DESC, create_time, id LIMIT ", d.Param(4),
                      d.kind() == Dialect::Kind::kPostgres ? " FOR UPDATE SKIP LOCKED" : "");
}

// Terminal and not waiting for a provider cancel: a task retention may
// delete.
constexpr char kDeletable[] = "state BETWEEN 5 AND 7 AND provider_cancel_pending = 0";

// The statements that run unattended (retention, the lease takeover scan)
// name the partial index they read in its order (Dialect::IndexedBy): with
// the statistics PRAGMA optimize writes for a large store, or with none
// yet, SQLite's planner would take a state range of tasks_state_list
// instead and sort every matching row on each run. At 1,000,000 tasks:
// retention's batch 1.6 s on the writer (0.65 s with nothing old), an
// output retention batch 0.35 s, a takeover scan 50-84 ms on the
// dispatcher; each under a millisecond on its index.
std::string DeleteEndedSql(const Dialect& d) {
  // SKIP LOCKED: replicas running retention at once split the rows.
  const bool pg = d.kind() == Dialect::Kind::kPostgres;
  return absl::StrCat("DELETE FROM tasks WHERE id IN (SELECT id FROM ",
                      d.IndexedBy("tasks", "tasks_ended"), " WHERE ", kDeletable,
                      " AND end_time < ", d.Param(1), " ORDER BY end_time, id LIMIT ",
                      d.Param(2), pg ? " FOR UPDATE SKIP LOCKED" : "", ") RETURNING ",
                      TaskColumnList());
}

}  // namespace

TaskStatements::TaskStatements(const Dialect& d)
    : dialect(d),
      columns(TaskColumnList()),
      insert(InsertSql(d)),
      select_by_id(absl::StrCat("SELECT ", columns, " FROM tasks WHERE id = ", d.Param(1))),
      select_by_request_id(absl::StrCat("SELECT ", columns, " FROM tasks WHERE request_id = ",
                                        d.Param(1), " AND request_id <> ''")),
      update(UpdateSql(d)),
      read_back(d.ReturningRow(columns).empty()
                    ? absl::StrCat("SELECT ", columns, " FROM tasks WHERE id = ", d.Param(1),
                                   " AND changes() = 1")
                    : ""),
      version_of(absl::StrCat("SELECT version FROM tasks WHERE id = ", d.Param(1))),
      list_recoverable(absl::StrCat(
          "SELECT ", columns, " FROM ", d.IndexedBy("tasks", "tasks_recoverable"),
          " WHERE (state BETWEEN 2 AND 4 OR (state = 7 AND provider_cancel_pending = "
          "1)) AND (lease_owner = '' OR lease_owner = ",
          d.Param(1), " OR lease_expiry IS NULL OR lease_expiry <= ", d.Param(2),
          ") ORDER BY create_time, id")),
      renew(absl::StrCat("UPDATE tasks SET lease_expiry = ", d.Param(2), " WHERE lease_owner = ",
                         d.Param(1), " AND lease_owner <> '' AND state BETWEEN 1 AND 4")),
      // NULLS FIRST is SQLite's default order, spelled out for PostgreSQL.
      next_queued(absl::StrCat("SELECT next_attempt_time FROM tasks WHERE state = 1 AND backend = ",
                               d.Param(1), " ORDER BY next_attempt_time NULLS FIRST LIMIT 1")),
      image_in_use(absl::StrCat("SELECT 1 FROM tasks WHERE image_sha256 = ", d.Param(1),
                                " AND image_sha256 <> '' AND state <> 5 LIMIT 1")),
      read_blob(absl::StrCat("SELECT data FROM blobs WHERE sha256 = ", d.Param(1))),
      delete_blob(absl::StrCat("DELETE FROM blobs WHERE sha256 = ", d.Param(1))),
      stub_counter(absl::StrCat("SELECT next FROM stub_counters WHERE base = ", d.Param(1))),
      delete_ended(DeleteEndedSql(d)),
      delete_one(absl::StrCat("DELETE FROM tasks WHERE id = ", d.Param(1), " AND ", kDeletable,
                              " RETURNING ", columns)),
      list_kept_outputs(absl::StrCat(
          "SELECT ", columns, " FROM ", d.IndexedBy("tasks", "tasks_output_kept"),
          " WHERE state = 5 AND output_path <> '' AND output_removed_time IS NULL"
          " AND end_time < ",
          d.Param(1), " ORDER BY end_time, id LIMIT ", d.Param(2))),
      forget_stub_counter(absl::StrCat(
          "DELETE FROM stub_counters WHERE base = ", d.Param(1, "text"),
          " AND NOT EXISTS (SELECT 1 FROM tasks WHERE target_filename_stub = ", d.Param(1, "text"),
          ")")),
      claim_callers(ClaimCallersSql(d)),
      claim_active(absl::StrCat("SELECT caller, COUNT(*) FROM tasks WHERE backend = ", d.Param(1),
                                " AND state BETWEEN 2 AND 4 GROUP BY caller")),
      claim_head(ClaimHeadSql(d)),
      claim_one(absl::StrCat("UPDATE tasks SET ", ClaimSet(""), " WHERE id = ", d.Param(1),
                             " AND state = 1", d.ReturningRow(columns))),
      count_queued_of(absl::StrCat("SELECT COUNT(*) FROM tasks WHERE state = 1 AND caller = ",
                                   d.Param(1))),
      find_identical(absl::StrCat(
          "SELECT ", columns, " FROM tasks WHERE reuse_key = ", d.Param(1),
          " AND reuse_key <> '' AND ((state = 5 AND output_path <> ''"
          " AND output_removed_time IS NULL) OR (state BETWEEN 1 AND 4 AND reused_from = ''))"
          " ORDER BY state DESC, end_time DESC, create_time, id LIMIT 1",
          d.kind() == Dialect::Kind::kPostgres ? " FOR SHARE" : "")),
      list_followers_of(absl::StrCat("SELECT ", columns, " FROM tasks WHERE reused_from = ",
                                     d.Param(1), " AND reused_from <> '' AND state = 1",
                                     " ORDER BY create_time, id LIMIT ", d.Param(2))),
      // Sorts the QUEUED followers only: SQLite's planner would walk every
      // QUEUED task in tasks_state_list, reading each from the table.
      list_followers(absl::StrCat("SELECT ", columns, " FROM ",
                                  d.IndexedBy("tasks", "tasks_followers"),
                                  " WHERE reused_from <> '' AND state = 1",
                                  " ORDER BY create_time, id LIMIT ", d.Param(1))) {}

std::string TaskStatements::ClaimSet(absl::string_view table) const {
  const std::string now = dialect.Param(kClaimNow);
  return absl::StrCat("state = 2, lease_owner = ", dialect.Param(kClaimOwner),
                      ", lease_expiry = ", dialect.Param(kClaimLeaseExpiry),
                      ", attempt_count = ", table, "attempt_count + 1, start_time = COALESCE(",
                      table, "start_time, ", now, "), update_time = ", now, ", version = ", table,
                      "version + 1");
}

std::string TaskStatements::InsertLabels(size_t count) const {
  std::vector<std::string> rows;
  for (size_t i = 0; i < count; ++i) {
    const int key = 3 + 2 * static_cast<int>(i);
    rows.push_back(absl::StrCat("(", dialect.Param(1), ", ", dialect.Param(2), ", ",
                                dialect.Param(key), ", ", dialect.Param(key + 1), ")"));
  }
  return absl::StrCat("INSERT INTO task_labels (task_id, create_time, key, value) VALUES ",
                      absl::StrJoin(rows, ", "));
}

}  // namespace videotask::store::internal
