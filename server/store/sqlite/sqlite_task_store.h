// The embedded TaskStore: one SQLite file in WAL mode under a data dir.
//
// Writes (InsertAsync, Update, ClaimQueued, RenewLeases) go to one writer
// thread that owns the write connection and commits in groups: it drains
// every pending write into one BEGIN IMMEDIATE ... COMMIT, each write inside
// its own SAVEPOINT so one failure rolls back only itself, then completes
// them all after the single fsync. Reads use a small pool of their own
// connections and never wait for the writer.
//
// Large image blobs live as content-addressed files under
// <data_dir>/blobs/<aa>/<sha256> (written and fsynced before the insert is
// queued); small ones are rows of the `blobs` table, written in the insert's
// transaction.
//
// Thread-safe. The blocking write methods must not be called from an
// InsertAsync `done` callback (they return FAILED_PRECONDITION there rather
// than deadlock).
#ifndef VIDEOTASK_SERVER_STORE_SQLITE_SQLITE_TASK_STORE_H_
#define VIDEOTASK_SERVER_STORE_SQLITE_SQLITE_TASK_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "server/store/batch_queue.h"
#include "server/store/resource_pool.h"
#include "server/store/sqlite/sqlite.h"
#include "server/store/table_store.h"

namespace videotask::store {

struct SqliteStoreOptions {
  // The database is <data_dir>/videotask.db, blobs under <data_dir>/blobs/,
  // the process lock <data_dir>/LOCK. Created when missing.
  std::string data_dir;
  // Stamps create_time/update_time on Insert when unset. Borrowed, must
  // outlive the store; null = the system clock.
  const Clock* clock = nullptr;
  int reader_connections = 4;
  // Largest WAL file kept after a checkpoint (journal_size_limit), so the
  // write-ahead log does not stay at its high-water mark.
  int64_t wal_size_limit_bytes = int64_t{64} << 20;
  // Log frames (pages) after which a commit checkpoints the log into the
  // database (wal_autocheckpoint; SQLite's default is 1,000). A longer log
  // copies the pages that many commits touch (index interiors, the tail
  // of each append-only index) once per checkpoint instead of once per
  // 1,000 frames: about a fifth less CPU per durable submit. 10,000 pages
  // is about 40 MB of log.
  int wal_checkpoint_pages = 10000;
  // Images up to this size are stored in the database, larger ones as files.
  int64_t inline_blob_max_bytes = 256 * 1024;
  absl::Duration busy_timeout = absl::Seconds(5);
  // Most write requests grouped into one transaction.
  int max_ops_per_commit = 1024;
  // Told of every group commit (metrics). Borrowed; null = none.
  StoreObserver* observer = nullptr;
};

// Counters since Open, for tests and metrics.
struct SqliteStoreStats {
  int64_t commits = 0;  // write transactions committed
  int64_t ops = 0;      // write requests completed (an InsertAsync call is one)
};

class SqliteTaskStore final : public internal::TableStore {
 public:
  // Creates the data dir, takes an exclusive lock on <data_dir>/LOCK
  // (FAILED_PRECONDITION when another process, or another store in this
  // process, holds it), opens the database (WAL, synchronous=FULL), migrates
  // the schema, and releases every lease: with the lock held nobody else can
  // be working on these tasks.
  static absl::StatusOr<std::unique_ptr<SqliteTaskStore>> Open(const SqliteStoreOptions& options);

  // Completes every queued write, then closes the connections and releases
  // the lock.
  ~SqliteTaskStore() override;

  SqliteTaskStore(const SqliteTaskStore&) = delete;
  SqliteTaskStore& operator=(const SqliteTaskStore&) = delete;

  // TaskStore (reads: TableStore). Notes beyond task_store.h:
  //  - InsertAsync: sets version = 1, create_time (and update_time) from the
  //    clock when unset; INVALID_ARGUMENT for an empty id or base stub.
  //  - Update: when the task keeps the same lease owner, a lease_expiry
  //    older than the stored one (extended by RenewLeases meanwhile) does
  //    not shorten it.
  //  - RenewLeases and the lease release at Open do not bump versions, so
  //    the engine's copies stay current.
  void InsertAsync(std::vector<NewTask> tasks, std::function<void(InsertResults)> done) override;
  absl::StatusOr<Task> Update(const Task& task) override;
  absl::StatusOr<std::vector<Task>> ClaimQueued(absl::string_view backend, int limit,
                                                absl::Time now, absl::string_view owner,
                                                absl::Time lease_expiry) override;
  absl::Status RenewLeases(absl::string_view owner, absl::Time lease_expiry) override;
  absl::StatusOr<std::string> ReadImage(absl::string_view sha256) override;
  absl::StatusOr<std::vector<Task>> DeleteEnded(absl::Time ended_before, int limit) override;
  absl::StatusOr<Task> Delete(absl::string_view id) override;
  // New database files use auto_vacuum = INCREMENTAL: this runs
  // `PRAGMA incremental_vacuum(max_pages)` in the next group commit.
  absl::StatusOr<int64_t> ReclaimSpace(int64_t max_pages) override;

  SqliteStoreStats stats() const;
  const std::string& database_path() const { return db_path_; }
  // Where a large blob with this digest lives (whether or not it exists).
  std::string BlobFilePath(absl::string_view sha256) const;

 protected:
  absl::Status WithReadSession(absl::FunctionRef<absl::Status(internal::SqlSession&)> fn) override;
  absl::Status WithWriteSession(std::function<absl::Status(internal::SqlSession&)> fn) override;

 private:
  class WriteOp;  // one queued write request
  class InsertOp;
  class CallOp;
  class InsertHooks;    // the store core's hooks for an insert
  struct WriteContext;  // per-transaction state of the writer

  SqliteTaskStore(const SqliteStoreOptions& options, sqlite::Database writer_db);

  // Queues `op` for the writer; false (op untouched) once the writer stopped.
  bool Enqueue(std::unique_ptr<WriteOp>& op);
  // Runs `fn` on the writer thread inside a savepoint of the next group
  // commit and waits until that commit is durable. `fn`'s status, or the
  // commit's when it failed.
  absl::Status RunOnWriter(std::function<absl::Status(WriteContext&)> fn);
  void WriterLoop();
  void ProcessBatch(std::vector<std::unique_ptr<WriteOp>>& ops);
  void ReportCommit(absl::Time began, size_t writes, bool committed);
  // Applies the units of `units` from `next` on in one transaction; false
  // when that transaction was lost (every unit of it failed).
  bool ApplyUnits(const std::vector<std::pair<WriteOp*, int>>& units, size_t& next,
                  WriteContext& ctx, std::vector<std::pair<WriteOp*, int>>& applied);
  // Deletes the blobs of ctx.blob_candidates no live task uses (rows now,
  // files after the commit), in a savepoint of its own.
  void CleanUpBlobs(WriteContext& ctx);
  absl::Status DeleteUnusedBlobs(WriteContext& ctx);
  bool OnWriterThread() const;

  // Writer-thread pieces, run inside a savepoint.
  absl::StatusOr<InsertResult> InsertOne(NewTask& item, WriteContext& ctx);
  absl::StatusOr<std::string> AllocateStub(const std::string& base);
  absl::Status StoreImage(const Task& task, absl::string_view bytes);
  absl::StatusOr<Task> UpdateOne(const Task& task, WriteContext& ctx);
  absl::StatusOr<std::vector<Task>> ClaimBatch(const std::string& backend, int limit,
                                               absl::Time now, const std::string& owner,
                                               absl::Time lease_expiry);
  absl::Status WriteBlobFile(absl::string_view sha256, absl::string_view bytes) const;

  const SqliteStoreOptions options_;
  const Clock& clock_;
  const std::string db_path_;
  const std::string blob_dir_;

  struct LockFile {  // closed (lock released) after the connections
    int fd = -1;
    LockFile() = default;
    LockFile(const LockFile&) = delete;
    LockFile& operator=(const LockFile&) = delete;
    ~LockFile();
  };
  LockFile lock_;

  // Used only by the writer thread (and by Open before it starts).
  sqlite::Database writer_db_;
  internal::BatchQueue<std::unique_ptr<WriteOp>> queue_;
  std::thread writer_;

  internal::ResourcePool<sqlite::Database> readers_;

  std::atomic<int64_t> commits_{0};
  std::atomic<int64_t> ops_{0};
};

}  // namespace videotask::store

#endif  // VIDEOTASK_SERVER_STORE_SQLITE_SQLITE_TASK_STORE_H_
