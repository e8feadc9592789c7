// Tasks per (backend, state), kept as counts by the database itself so that
// reading them costs the same at ten rows as at a million, and so that a
// store shared by several processes counts the shared queue.
//
// SQLite (one writer): triggers on `tasks` update `task_state_counts` in the
// same transaction as the change. PostgreSQL (many writers): triggers only
// append to `task_state_deltas` (inserts never wait for each other); a reader
// folds the deltas into `task_state_counts` under an advisory lock, and reads
// counts plus the deltas not yet folded.
#ifndef VIDEOTASK_SERVER_STORE_STATE_COUNTS_H_
#define VIDEOTASK_SERVER_STORE_STATE_COUNTS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/store/dialect.h"
#include "server/store/sql_session.h"
#include "server/store/task_store.h"

namespace videotask::store::internal {

// The migration step adding the counts: tables, triggers, and the counts of
// the rows already there.
std::string SchemaStateCounts(const Dialect& dialect);

// Folds the pending deltas into the counts (PostgreSQL). Run inside a
// transaction; skips the fold when another process is folding.
absl::Status FoldStateDeltas(SqlSession& session, const Dialect& dialect);

// Counts per (backend, state), zero counts left out.
absl::StatusOr<std::vector<StateCount>> ReadStateCounts(SqlSession& session,
                                                        const Dialect& dialect);

// The statement ReadOldestQueued runs per backend (parameter 1: backend).
std::string OldestQueuedSql(const Dialect& dialect);

// The create_time of the oldest QUEUED task of each backend that has one.
absl::StatusOr<std::vector<OldestQueued>> ReadOldestQueued(SqlSession& session,
                                                          const Dialect& dialect);

}  // namespace videotask::store::internal

#endif  // VIDEOTASK_SERVER_STORE_STATE_COUNTS_H_
