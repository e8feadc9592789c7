// PgTaskStore's inserts: a few inserter threads group-commit what is
// queued, one savepoint per task.
#include "server/store/postgres/pg_task_store.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/thread_name.h"
#include "server/store/postgres/pg_session.h"
#include "server/store/store_util.h"

namespace videotask::store {
namespace {

using pg::Connection;
using pg::Params;
using pg::PgSession;
using pg::Result;

// Touching an existing row locks it: a concurrent cleanup waits for us.
constexpr char kUpsertBlobSql[] =
    "INSERT INTO blobs (sha256, data) VALUES ($1, $2) "
    "ON CONFLICT (sha256) DO UPDATE SET sha256 = excluded.sha256";
constexpr char kLockBlobSql[] = "SELECT 1 FROM blobs WHERE sha256 = $1 FOR UPDATE";
// A candidate is ours when no committed task has it and no concurrent
// transaction is trying it (the advisory lock, held until our commit, is
// taken without waiting; a hash collision merely skips a name).
constexpr char kTryStubSql[] =
    "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 7311)) "
    "AND NOT EXISTS (SELECT 1 FROM tasks WHERE target_filename_stub = $1)";
// Sorted bases, one statement: concurrent raises lock rows in one order.
constexpr char kRaiseStubHintsSql[] =
    "INSERT INTO stub_counters AS c (base, next) "
    "SELECT b, n FROM unnest($1::text[], $2::bigint[]) AS h (b, n) "
    "ON CONFLICT (base) DO UPDATE SET next = GREATEST(c.next, excluded.next)";

bool IsRacedInsert(const absl::Status& status) {
  if (pg::SqlState(status) != pg::kUniqueViolation) return false;
  const std::string constraint = pg::ConstraintOf(status);
  return constraint == "tasks_request_id" || constraint == "tasks_stub";
}

}  // namespace

// The engine's side of an insert (task_rows.h), on the inserter's
// connection inside its transaction.
class PgTaskStore::InsertHooks final : public internal::InsertHooks {
 public:
  InsertHooks(PgTaskStore& store, Connection& conn, StubHints& hints)
      : store_(store), conn_(conn), hints_(hints) {}
  absl::Status StoreImage(const Task& task, absl::string_view bytes) override {
    return conn_.Exec(kUpsertBlobSql, Params().Text(task.image_sha256).Bytes(bytes)).status();
  }
  absl::StatusOr<std::string> AllocateStub(const std::string& base) override {
    return store_.AllocateStub(conn_, base, hints_);
  }
  absl::Status ReleaseImage(const std::string& sha256) override {
    return store_.DeleteBlobIfUnused(conn_, sha256);
  }

 private:
  PgTaskStore& store_;
  Connection& conn_;
  StubHints& hints_;
};

void PgTaskStore::InsertAsync(std::vector<NewTask> tasks, std::function<void(InsertResults)> done) {
  if (tasks.empty()) {
    done(InsertResults());
    return;
  }
  auto op = std::make_unique<InsertOp>(std::move(tasks), std::move(done));
  for (size_t i = 0; i < op->tasks.size(); ++i) {
    op->precheck[i] = internal::CheckImageDigest(op->tasks[i].task);
  }
  if (queue_.Push(op)) return;
  for (auto& r : op->results) r = absl::UnavailableError("task store is shut down");
  op->tasks.clear();
  op->done(std::move(op->results));
}

void PgTaskStore::InserterLoop(Connection* conn) {
  SetThreadName("pg-inserter");
  const size_t max_ops = static_cast<size_t>(options_.max_ops_per_commit);
  while (true) {
    std::vector<std::unique_ptr<InsertOp>> batch = queue_.Pop(max_ops);
    if (batch.empty()) return;  // the last one out: InsertAsync fails from now on
    ProcessInserts(*conn, batch);
  }
}

absl::StatusOr<InsertResult> PgTaskStore::InsertInSavepoint(Connection& conn, NewTask& item,
                                                            StubHints& hints, bool& fatal) {
  const StubHints hints_before = hints;  // a failed unit takes no stub
  absl::Status sp = conn.Run("SAVEPOINT op");
  absl::StatusOr<InsertResult> r =
      sp.ok() ? InsertOne(conn, item, hints) : absl::StatusOr<InsertResult>(sp);
  for (int again = 0; again < 3 && !r.ok() && IsRacedInsert(r.status()); ++again) {
    // Another transaction stored the same request_id (or stub) first and
    // has committed: the next try sees it.
    absl::Status undo = conn.Run("ROLLBACK TO SAVEPOINT op");
    hints = hints_before;
    r = undo.ok() ? InsertOne(conn, item, hints) : absl::StatusOr<InsertResult>(undo);
  }
  if (r.ok()) {
    sp = conn.Run("RELEASE SAVEPOINT op");
    if (!sp.ok()) r = sp;
  }
  if (r.ok()) return r;
  hints = hints_before;
  if (pg::IsRetryableTxError(r.status()) || !conn.ok()) {
    fatal = true;
    return r;
  }
  absl::Status undo = conn.Run("ROLLBACK TO SAVEPOINT op");
  if (!undo.ok()) {
    fatal = true;
    return undo;
  }
  return r;
}

absl::Status PgTaskStore::TryInsertTransaction(Connection& conn,
                                               std::vector<std::unique_ptr<InsertOp>>& ops) {
  StubHints hints;
  for (auto& op : ops) {
    for (size_t i = 0; i < op->tasks.size(); ++i) {
      if (!op->precheck[i].ok()) {
        op->results[i] = op->precheck[i];
        continue;
      }
      bool fatal = false;
      absl::StatusOr<InsertResult> r = InsertInSavepoint(conn, op->tasks[i], hints, fatal);
      if (fatal) {
        (void)conn.Run("ROLLBACK");
        return r.status();
      }
      op->results[i] = std::move(r);
    }
  }
  VT_RETURN_IF_ERROR(conn.Run("COMMIT"));
  commits_.fetch_add(1);
  RaiseStubHints(conn, hints);
  return absl::OkStatus();
}

void PgTaskStore::ProcessInserts(Connection& conn, std::vector<std::unique_ptr<InsertOp>>& ops) {
  const absl::Time began = absl::Now();
  absl::Status tx_status;
  for (int attempt = 0; attempt < kMaxTxAttempts; ++attempt) {
    if (!conn.ok() && conn.Reset()) TagSession(conn);
    tx_status = conn.Run("BEGIN");
    if (!tx_status.ok()) continue;
    tx_status = TryInsertTransaction(conn, ops);
    if (tx_status.ok()) break;
    if (!pg::IsRetryableTxError(tx_status) && conn.ok()) break;
  }
  if (options_.observer != nullptr) {
    int writes = 0;
    for (auto& op : ops) writes += static_cast<int>(op->tasks.size());
    options_.observer->OnCommit(absl::Now() - began, writes, tx_status.ok());
  }
  for (auto& op : ops) {
    if (!tx_status.ok()) {
      absl::Status failed = internal::WithContext(tx_status, "insert transaction failed");
      for (auto& r : op->results) r = failed;
    }
    op->tasks.clear();  // frees image bytes before the callback runs
    ops_.fetch_add(1);
    op->done(std::move(op->results));
  }
}

absl::StatusOr<std::string> PgTaskStore::AllocateStub(Connection& conn, const std::string& base,
                                                      StubHints& hints) {
  int64_t next = 0;  // 0: try the base itself
  auto hint = hints.find(base);
  if (hint != hints.end()) {
    next = hint->second;
  } else {
    // Stub counters are hints (where to start probing for a free stub),
    // read without locking and raised after each insert transaction
    // commits; the unique index on target_filename_stub is what guarantees
    // uniqueness.
    VT_ASSIGN_OR_RETURN(Result counter, conn.Exec(table_.sql().stub_counter, Params().Text(base)));
    if (counter.rows() > 0) next = counter.Int(0, 0);
  }
  VT_ASSIGN_OR_RETURN(
      std::string stub,
      internal::ProbeStub(base, next, [&](const std::string& candidate) -> absl::StatusOr<bool> {
        VT_ASSIGN_OR_RETURN(Result free, conn.Exec(kTryStubSql, Params().Text(candidate)));
        return free.rows() > 0 && free.Text(0, 0) == "t";
      }));
  hints[base] = next;
  return stub;
}

void PgTaskStore::RaiseStubHints(Connection& conn, const StubHints& hints) {
  if (hints.empty()) return;
  std::vector<std::string> bases, nexts;
  for (const auto& [base, next] : hints) {
    bases.push_back(base);
    nexts.push_back(absl::StrCat(next));
  }
  absl::Status status =
      conn.Exec(kRaiseStubHintsSql, Params().Text(pg::TextArray(bases)).Text(pg::TextArray(nexts)))
          .status();
  if (!status.ok()) VT_LOG_WARN("task store: stub counters not raised: {}", status.ToString());
}

absl::StatusOr<InsertResult> PgTaskStore::InsertOne(Connection& conn, NewTask& item,
                                                    StubHints& hints) {
  PgSession session(conn);
  InsertHooks hooks(*this, conn, hints);
  return table_.Insert(session, hooks, clock_, item);
}

// Locks the blob row first, then looks for live users with a new snapshot:
// an insert that upserted the row before us is committed and seen; one
// after us waits on the lock and stores the bytes again.
absl::Status PgTaskStore::DeleteBlobIfUnused(Connection& conn, const std::string& sha) {
  VT_ASSIGN_OR_RETURN(Result locked, conn.Exec(kLockBlobSql, Params().Text(sha)));
  if (locked.rows() == 0) return absl::OkStatus();
  PgSession session(conn);
  VT_ASSIGN_OR_RETURN(bool used, table_.ImageInUse(session, sha));
  if (used) return absl::OkStatus();
  return session.Exec(table_.sql().delete_blob, [&](internal::RowWriter& w) { w.Text(sha); });
}

}  // namespace videotask::store
