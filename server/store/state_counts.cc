#include "server/store/state_counts.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace videotask::store::internal {
namespace {

constexpr char kSqliteCounts[] = R"sql(
CREATE TABLE task_state_counts (
  backend TEXT NOT NULL,
  state INTEGER NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (backend, state)
) WITHOUT ROWID;
INSERT INTO task_state_counts (backend, state, n)
  SELECT backend, state, COUNT(*) FROM tasks GROUP BY backend, state;
CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN
  INSERT OR IGNORE INTO task_state_counts (backend, state, n) VALUES (NEW.backend, NEW.state, 0);
  UPDATE task_state_counts SET n = n + 1 WHERE backend = NEW.backend AND state = NEW.state;
END;
CREATE TRIGGER tasks_count_update AFTER UPDATE OF state ON tasks
  WHEN OLD.state <> NEW.state BEGIN
  UPDATE task_state_counts SET n = n - 1 WHERE backend = OLD.backend AND state = OLD.state;
  INSERT OR IGNORE INTO task_state_counts (backend, state, n) VALUES (NEW.backend, NEW.state, 0);
  UPDATE task_state_counts SET n = n + 1 WHERE backend = NEW.backend AND state = NEW.state;
END;
CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN
  UPDATE task_state_counts SET n = n - 1 WHERE backend = OLD.backend AND state = OLD.state;
END;
)sql";

constexpr char kPostgresCounts[] = R"sql(
CREATE TABLE task_state_counts (
  backend TEXT NOT NULL,
  state INTEGER NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (backend, state)
);
CREATE TABLE task_state_deltas (
  id BIGSERIAL PRIMARY KEY,
  backend TEXT NOT NULL,
  state INTEGER NOT NULL,
  delta INTEGER NOT NULL
);
INSERT INTO task_state_counts (backend, state, n)
  SELECT backend, state, COUNT(*) FROM tasks GROUP BY backend, state;
CREATE FUNCTION videotask_count_task() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO task_state_deltas (backend, state, delta) VALUES (NEW.backend, NEW.state, 1);
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO task_state_deltas (backend, state, delta) VALUES (OLD.backend, OLD.state, -1);
  ELSIF OLD.state <> NEW.state THEN
    INSERT INTO task_state_deltas (backend, state, delta)
      VALUES (OLD.backend, OLD.state, -1), (NEW.backend, NEW.state, 1);
  END IF;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER tasks_count AFTER INSERT OR UPDATE OF state OR DELETE ON tasks
  FOR EACH ROW EXECUTE FUNCTION videotask_count_task();
)sql";

// Any constant shared by every videotaskd: the advisory lock of the fold.
constexpr int64_t kFoldLockKey = 0x7669646361743173;

}  // namespace

std::string SchemaStateCounts(const Dialect& dialect) {
  return dialect.kind() == Dialect::Kind::kPostgres ? kPostgresCounts : kSqliteCounts;
}

absl::Status FoldStateDeltas(SqlSession& session, const Dialect& dialect) {
  if (dialect.kind() != Dialect::Kind::kPostgres) return absl::OkStatus();
  bool locked = false;
  VT_RETURN_IF_ERROR(session.Query(
      "SELECT pg_try_advisory_xact_lock($1::bigint)::int",
      [](RowWriter& w) { w.Int(kFoldLockKey); },
      [&](const RowReader& row) {
        locked = row.Int(0) != 0;
        return absl::OkStatus();
      }));
  if (!locked) return absl::OkStatus();
  // Only the deltas this transaction sees are moved; later ones wait for
  // the next fold. The lock keeps two folds from updating counts at once.
  return session.Exec(
      "WITH moved AS (DELETE FROM task_state_deltas RETURNING backend, state, delta) "
      "INSERT INTO task_state_counts AS c (backend, state, n) "
      "SELECT backend, state, SUM(delta) FROM moved GROUP BY backend, state "
      "ON CONFLICT (backend, state) DO UPDATE SET n = c.n + EXCLUDED.n",
      NoParams);
}

absl::StatusOr<std::vector<StateCount>> ReadStateCounts(SqlSession& session,
                                                        const Dialect& dialect) {
  // One statement, so counts and deltas come from one snapshot.
  const std::string sql =
      dialect.kind() == Dialect::Kind::kPostgres
          ? "SELECT backend, state, SUM(n)::bigint FROM (SELECT backend, state, n FROM "
            "task_state_counts UNION ALL SELECT backend, state, delta FROM task_state_deltas) u "
            "GROUP BY backend, state HAVING SUM(n) <> 0"
          : "SELECT backend, state, n FROM task_state_counts WHERE n <> 0";
  std::vector<StateCount> counts;
  VT_RETURN_IF_ERROR(session.Query(sql, NoParams, [&](const RowReader& row) {
    StateCount c;
    c.backend = row.Text(0);
    c.state = static_cast<TaskState>(row.Int(1));
    c.count = row.Int(2);
    counts.push_back(std::move(c));
    return absl::OkStatus();
  }));
  return counts;
}

std::string OldestQueuedSql(const Dialect& dialect) {
  // SQLite reads the backend's range of tasks_caller_claim, which holds
  // only QUEUED tasks and their create_time, without the table. With the
  // statistics of a large store its planner would take tasks_queued_next
  // instead, read every QUEUED task of the backend from the table and sort
  // them (0.5 s at 90,000 queued, on every gauge refresh and dashboard
  // load); walking tasks_state_list in create_time order instead is quick
  // for a backend with old tasks but reads the whole queue from the table
  // for one whose tasks are all recent. PostgreSQL plans MIN as the first
  // row of an index in create_time order (tasks_list or
  // tasks_backend_list, read backward).
  return absl::StrCat("SELECT MIN(create_time) FROM ",
                      dialect.IndexedBy("tasks", "tasks_caller_claim"),
                      " WHERE state = 1 AND backend = ", dialect.Param(1, "text"));
}

absl::StatusOr<std::vector<OldestQueued>> ReadOldestQueued(SqlSession& session,
                                                          const Dialect& dialect) {
  // Backends with QUEUED tasks come from the counts; each oldest is one
  // read of an index (OldestQueuedSql).
  VT_ASSIGN_OR_RETURN(std::vector<StateCount> counts, ReadStateCounts(session, dialect));
  std::vector<OldestQueued> oldest;
  const std::string sql = OldestQueuedSql(dialect);
  for (const StateCount& c : counts) {
    if (c.state != TaskState::kQueued || c.count <= 0) continue;
    OldestQueued o;
    o.backend = c.backend;
    VT_RETURN_IF_ERROR(session.Query(
        sql, [&](RowWriter& w) { w.Text(c.backend); },
        [&](const RowReader& row) {
          o.create_time = row.Time(0);
          return absl::OkStatus();
        }));
    if (o.create_time != absl::InfinitePast()) oldest.push_back(std::move(o));
  }
  return oldest;
}

}  // namespace videotask::store::internal
