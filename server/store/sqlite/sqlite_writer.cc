// SqliteTaskStore's writer thread: group commit of queued write requests,
// each in its own savepoint, and the inserts it runs.
#include "server/store/sqlite/sqlite_task_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/thread_name.h"
#include "server/store/sqlite/sqlite_session.h"
#include "server/store/sqlite/sqlite_write_ops.h"
#include "server/store/store_util.h"

namespace videotask::store {

using internal::WithContext;
using sqlite::SqliteSession;
using sqlite::Transaction;

namespace {

constexpr char kStubTakenSql[] = "SELECT 1 FROM tasks WHERE target_filename_stub = ?1";
constexpr char kSetStubCounterSql[] =
    "INSERT INTO stub_counters (base, next) VALUES (?1, ?2) "
    "ON CONFLICT (base) DO UPDATE SET next = excluded.next";
constexpr char kInsertBlobSql[] =
    "INSERT INTO blobs (sha256, data) VALUES (?1, ?2) ON CONFLICT (sha256) DO NOTHING";

bool FileExists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace

// The engine's side of an insert (task_rows.h), on the writer connection.
class SqliteTaskStore::InsertHooks final : public internal::InsertHooks {
 public:
  InsertHooks(SqliteTaskStore& store, WriteContext& ctx) : store_(store), ctx_(ctx) {}
  absl::Status StoreImage(const Task& task, absl::string_view bytes) override {
    return store_.StoreImage(task, bytes);
  }
  absl::StatusOr<std::string> AllocateStub(const std::string& base) override {
    return store_.AllocateStub(base);
  }
  absl::Status ReleaseImage(const std::string& sha256) override {
    ctx_.blob_candidates.insert(sha256);
    return absl::OkStatus();
  }

 private:
  SqliteTaskStore& store_;
  WriteContext& ctx_;
};

// ------------------------------------------------------------------ writer

bool SqliteTaskStore::OnWriterThread() const {
  return std::this_thread::get_id() == writer_.get_id();
}

bool SqliteTaskStore::Enqueue(std::unique_ptr<WriteOp>& op) { return queue_.Push(op); }

void SqliteTaskStore::WriterLoop() {
  SetThreadName("sqlite-writer");
  const size_t max_ops = static_cast<size_t>(options_.max_ops_per_commit);
  while (true) {
    std::vector<std::unique_ptr<WriteOp>> batch = queue_.Pop(max_ops);
    if (batch.empty()) return;  // stopping, and everything is done
    ProcessBatch(batch);
  }
}

bool SqliteTaskStore::ApplyUnits(const std::vector<std::pair<WriteOp*, int>>& units, size_t& next,
                                 WriteContext& ctx,
                                 std::vector<std::pair<WriteOp*, int>>& applied) {
  for (; next < units.size(); ++next) {
    auto [op, unit] = units[next];
    absl::Status status = writer_db_.Exec("SAVEPOINT op");
    if (status.ok()) status = op->Apply(*this, unit, ctx);
    if (status.ok()) status = writer_db_.Exec("RELEASE op");
    if (status.ok()) {
      applied.emplace_back(op, unit);
      continue;
    }
    absl::Status undo = absl::OkStatus();
    if (!writer_db_.InAutocommit()) {
      undo = writer_db_.Exec("ROLLBACK TO op");
      if (undo.ok()) undo = writer_db_.Exec("RELEASE op");
    }
    if (writer_db_.InAutocommit() || !undo.ok()) {
      // SQLite rolled the whole transaction back (I/O error, disk full):
      // every unit applied in it is lost too.
      VT_LOG_ERROR("task store: write transaction aborted: {}", status.ToString());
      absl::Status aborted = WithContext(status, "write transaction rolled back");
      for (auto& [done_op, done_unit] : applied) done_op->Fail(done_unit, aborted);
      op->Fail(unit, std::move(status));
      ++next;
      return false;
    }
    op->Fail(unit, std::move(status));
  }
  return true;
}

void SqliteTaskStore::CleanUpBlobs(WriteContext& ctx) {
  if (ctx.blob_candidates.empty()) return;
  absl::Status status = writer_db_.Exec("SAVEPOINT blobs");
  if (status.ok()) status = DeleteUnusedBlobs(ctx);
  if (status.ok()) status = writer_db_.Exec("RELEASE blobs");
  if (status.ok()) return;
  VT_LOG_WARN("task store: blob cleanup skipped: {}", status.ToString());
  ctx.files_to_delete.clear();
  if (!writer_db_.InAutocommit()) {
    absl::Status undo = writer_db_.Exec("ROLLBACK TO blobs");
    if (undo.ok()) undo = writer_db_.Exec("RELEASE blobs");
    if (!undo.ok()) VT_LOG_WARN("task store: rollback of blob cleanup failed");
  }
}

void SqliteTaskStore::ReportCommit(absl::Time began, size_t writes, bool committed) {
  if (options_.observer == nullptr) return;
  options_.observer->OnCommit(absl::Now() - began, static_cast<int>(writes), committed);
}

void SqliteTaskStore::ProcessBatch(std::vector<std::unique_ptr<WriteOp>>& ops) {
  std::vector<std::pair<WriteOp*, int>> units;
  for (auto& op : ops) {
    for (int u = 0; u < op->units(); ++u) units.emplace_back(op.get(), u);
  }
  size_t next = 0;
  while (next < units.size()) {
    const absl::Time began = absl::Now();
    const size_t first = next;
    absl::StatusOr<Transaction> tx = Transaction::Begin(writer_db_, Transaction::Mode::kImmediate);
    if (!tx.ok()) {
      VT_LOG_ERROR("task store: cannot begin a write transaction: {}", tx.status().ToString());
      for (; next < units.size(); ++next) units[next].first->Fail(units[next].second, tx.status());
      ReportCommit(began, next - first, false);
      break;
    }
    WriteContext ctx;
    std::vector<std::pair<WriteOp*, int>> applied;
    if (!ApplyUnits(units, next, ctx, applied)) {
      ReportCommit(began, next - first, false);
      continue;  // `tx` rolls back what is left
    }
    CleanUpBlobs(ctx);
    absl::Status commit = writer_db_.InAutocommit()
                              ? absl::InternalError("write transaction ended early")
                              : tx->Commit();
    if (!commit.ok()) {
      VT_LOG_ERROR("task store: commit failed: {}", commit.ToString());
      absl::Status failed = WithContext(commit, "commit");
      for (auto& [op, unit] : applied) op->Fail(unit, failed);
      ReportCommit(began, next - first, false);
      continue;
    }
    commits_.fetch_add(1);
    ReportCommit(began, next - first, true);
    for (const std::string& path : ctx.files_to_delete) {
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        VT_LOG_WARN("task store: cannot delete blob file {}: {}", path, std::strerror(errno));
      }
    }
  }
  for (auto& op : ops) {
    ops_.fetch_add(1);  // counted before its callback runs, so callers see it
    op->Complete();
  }
}

absl::Status SqliteTaskStore::DeleteUnusedBlobs(WriteContext& ctx) {
  SqliteSession session(writer_db_);
  for (const std::string& sha : ctx.blob_candidates) {
    VT_ASSIGN_OR_RETURN(bool used, table_.ImageInUse(session, sha));
    if (used) continue;
    VT_RETURN_IF_ERROR(
        session.Exec(table_.sql().delete_blob, [&](internal::RowWriter& w) { w.Text(sha); }));
    ctx.files_to_delete.push_back(BlobFilePath(sha));
  }
  return absl::OkStatus();
}

absl::Status SqliteTaskStore::RunOnWriter(std::function<absl::Status(WriteContext&)> fn) {
  if (OnWriterThread()) {
    return absl::FailedPreconditionError(
        "blocking task store writes cannot run on the store's own thread (from a done callback)");
  }
  absl::Status status;
  absl::Notification done;
  std::unique_ptr<WriteOp> op = std::make_unique<CallOp>(std::move(fn), &status, &done);
  if (!Enqueue(op)) return absl::UnavailableError("task store is shut down");
  done.WaitForNotification();
  return status;
}

// --------------------------------------------------------------- inserts

void SqliteTaskStore::InsertAsync(std::vector<NewTask> tasks,
                                  std::function<void(InsertResults)> done) {
  if (tasks.empty()) {
    done(InsertResults());
    return;
  }
  auto op = std::make_unique<InsertOp>(std::move(tasks), std::move(done));
  for (int i = 0; i < op->units(); ++i) {
    const NewTask& item = op->task(i);
    const std::string& sha = item.task.image_sha256;
    absl::Status digest = internal::CheckImageDigest(item.task);
    if (!digest.ok()) {
      op->SetPrecheck(i, std::move(digest));
      continue;
    }
    // Large blobs are durable before the insert is even queued.
    if (!sha.empty() &&
        static_cast<int64_t>(item.image_bytes.size()) > options_.inline_blob_max_bytes &&
        !FileExists(BlobFilePath(sha))) {
      op->SetPrecheck(i, WithContext(WriteBlobFile(sha, item.image_bytes),
                                     absl::StrCat("store image of task ", item.task.id)));
    }
  }
  std::unique_ptr<WriteOp> base = std::move(op);
  if (!Enqueue(base)) {
    for (int i = 0; i < base->units(); ++i) {
      base->Fail(i, absl::UnavailableError("task store is shut down"));
    }
    base->Complete();
  }
}

absl::StatusOr<std::string> SqliteTaskStore::AllocateStub(const std::string& base) {
  SqliteSession session(writer_db_);
  int64_t next = 0;  // 0: try the base itself
  VT_RETURN_IF_ERROR(session.Query(
      table_.sql().stub_counter, [&](internal::RowWriter& w) { w.Text(base); },
      [&](const internal::RowReader& row) {
        next = row.Int(0);
        return absl::OkStatus();
      }));
  VT_ASSIGN_OR_RETURN(std::string stub,
                      internal::ProbeStub(base, next, [&](const std::string& candidate) {
                        bool taken = false;
                        absl::Status status = session.Query(
                            kStubTakenSql, [&](internal::RowWriter& w) { w.Text(candidate); },
                            [&](const internal::RowReader&) {
                              taken = true;
                              return absl::OkStatus();
                            });
                        if (!status.ok()) return absl::StatusOr<bool>(status);
                        return absl::StatusOr<bool>(!taken);
                      }));
  VT_RETURN_IF_ERROR(
      session.Exec(kSetStubCounterSql, [&](internal::RowWriter& w) { w.Text(base).Int(next); }));
  return stub;
}

absl::Status SqliteTaskStore::StoreImage(const Task& task, absl::string_view bytes) {
  const std::string& sha = task.image_sha256;
  if (static_cast<int64_t>(bytes.size()) <= options_.inline_blob_max_bytes) {
    SqliteSession session(writer_db_);
    return session.Exec(kInsertBlobSql, [&](internal::RowWriter& w) { w.Text(sha).Blob(bytes); });
  }
  // Deleted after the caller checked (the last task using it ended).
  if (!FileExists(BlobFilePath(sha))) return WriteBlobFile(sha, bytes);
  return absl::OkStatus();
}

absl::StatusOr<InsertResult> SqliteTaskStore::InsertOne(NewTask& item, WriteContext& ctx) {
  SqliteSession session(writer_db_);
  InsertHooks hooks(*this, ctx);
  return table_.Insert(session, hooks, clock_, item);
}

absl::StatusOr<Task> SqliteTaskStore::UpdateOne(const Task& task, WriteContext& ctx) {
  SqliteSession session(writer_db_);
  VT_ASSIGN_OR_RETURN(Task stored, table_.Update(session, task));
  if (internal::MayReleaseImage(stored)) ctx.blob_candidates.insert(stored.image_sha256);
  return stored;
}

}  // namespace videotask::store
