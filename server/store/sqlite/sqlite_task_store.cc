#include "server/store/sqlite/sqlite_task_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/memory/memory.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "server/store/sqlite/sqlite_migrations.h"
#include "server/store/sqlite/sqlite_session.h"
#include "server/store/sqlite/sqlite_write_ops.h"
#include "server/store/store_util.h"

namespace videotask::store {
namespace {

using internal::CompareMicros;
using internal::RowReader;
using internal::RowWriter;
using sqlite::Database;
using sqlite::SqliteSession;

constexpr char kReleaseLeasesSql[] =
    "UPDATE tasks SET lease_owner = '', lease_expiry = NULL WHERE lease_owner <> ''";

absl::StatusOr<Database> OpenConnection(const std::string& path, const SqliteStoreOptions& options,
                                        bool writer) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (writer) flags |= SQLITE_OPEN_CREATE;
  VT_ASSIGN_OR_RETURN(Database db, Database::Open(path, flags));
  VT_RETURN_IF_ERROR(db.Exec(
      absl::StrCat("PRAGMA busy_timeout = ", absl::ToInt64Milliseconds(options.busy_timeout))));
  VT_RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys = ON"));
  if (writer) {
    // A new file gives freed pages back to the file system on
    // ReclaimSpace; only possible before its first table exists. Older
    // files (auto_vacuum NONE) reuse freed pages instead.
    VT_ASSIGN_OR_RETURN(int64_t pages, db.QueryInt64("PRAGMA page_count"));
    if (pages == 0) VT_RETURN_IF_ERROR(db.Exec("PRAGMA auto_vacuum = INCREMENTAL"));
    VT_ASSIGN_OR_RETURN(std::string mode, db.QueryText("PRAGMA journal_mode = WAL"));
    if (absl::AsciiStrToLower(mode) != "wal") {
      return absl::FailedPreconditionError(
          absl::StrCat("could not put ", path, " in WAL mode (got ", mode, ")"));
    }
    VT_RETURN_IF_ERROR(db.Exec("PRAGMA synchronous = FULL"));
    // Savepoint journals stay in memory instead of spilling to temp files.
    VT_RETURN_IF_ERROR(db.Exec("PRAGMA temp_store = MEMORY"));
    VT_RETURN_IF_ERROR(db.QueryInt64(absl::StrCat("PRAGMA journal_size_limit = ",
                                                  options.wal_size_limit_bytes))
                           .status());
    VT_RETURN_IF_ERROR(db.QueryInt64(absl::StrCat("PRAGMA wal_autocheckpoint = ",
                                                  options.wal_checkpoint_pages))
                           .status());
  } else {
    VT_RETURN_IF_ERROR(db.Exec("PRAGMA query_only = ON"));
    VT_RETURN_IF_ERROR(db.Exec("PRAGMA cache_size = -4096"));  // 4 MiB
  }
  // No memory-mapped I/O: mapped pages count as the process's memory.
  VT_RETURN_IF_ERROR(db.Exec("PRAGMA mmap_size = 0"));
  return db;
}

// Takes the exclusive lock of the data dir: the returned descriptor holds it.
absl::StatusOr<int> LockDataDir(const std::string& dir) {
  std::string lock_path = absl::StrCat(dir, "/LOCK");
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", lock_path));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("data dir ", dir, " is in use by another videotaskd process"));
    }
    return ErrnoStatus(err, absl::StrCat("flock ", lock_path));
  }
  return fd;
}

}  // namespace

// -------------------------------------------------------------- open/close

SqliteTaskStore::LockFile::~LockFile() {
  if (fd >= 0) ::close(fd);  // releases the flock
}

SqliteTaskStore::SqliteTaskStore(const SqliteStoreOptions& options, Database writer_db)
    : TableStore(internal::Dialect::Sqlite()),
      options_(options),
      clock_(internal::ClockOrSystem(options.clock)),
      db_path_(absl::StrCat(options.data_dir, "/videotask.db")),
      blob_dir_(absl::StrCat(options.data_dir, "/blobs")),
      writer_db_(std::move(writer_db)) {}

absl::StatusOr<std::unique_ptr<SqliteTaskStore>> SqliteTaskStore::Open(
    const SqliteStoreOptions& options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("data_dir is empty");
  if (options.reader_connections < 1) {
    return absl::InvalidArgumentError("reader_connections must be at least 1");
  }
  if (options.max_ops_per_commit < 1) {
    return absl::InvalidArgumentError("max_ops_per_commit must be at least 1");
  }
  if (options.wal_checkpoint_pages < 1) {
    return absl::InvalidArgumentError("wal_checkpoint_pages must be at least 1");
  }
  const std::string& dir = options.data_dir;
  VT_RETURN_IF_ERROR(MakeDirs(dir));
  VT_RETURN_IF_ERROR(MakeDirs(absl::StrCat(dir, "/blobs")));
  LockFile lock;
  VT_ASSIGN_OR_RETURN(lock.fd, LockDataDir(dir));

  std::string db_path = absl::StrCat(dir, "/videotask.db");
  VT_ASSIGN_OR_RETURN(Database writer_db, OpenConnection(db_path, options, /*writer=*/true));
  VT_RETURN_IF_ERROR(internal::WithContext(Migrate(writer_db), db_path));
  // The lock says no other process works on these tasks: every lease is
  // stale.
  VT_RETURN_IF_ERROR(writer_db.Exec(kReleaseLeasesSql));
  int64_t released = writer_db.Changes();

  auto store = absl::WrapUnique(new SqliteTaskStore(options, std::move(writer_db)));
  store->lock_.fd = lock.fd;
  lock.fd = -1;
  for (int i = 0; i < options.reader_connections; ++i) {
    VT_ASSIGN_OR_RETURN(Database reader, OpenConnection(db_path, options, /*writer=*/false));
    // Parses the schema and caches Get's statement now, not on a first read.
    VT_RETURN_IF_ERROR(reader.Prepare(store->table_.sql().select_by_id).status());
    store->readers_.Add(std::make_unique<Database>(std::move(reader)));
  }
  store->queue_.Start(1);
  store->writer_ = std::thread(&SqliteTaskStore::WriterLoop, store.get());
  VT_LOG_INFO("task store opened at {} (schema v{}, {} stale leases released)", db_path,
              LatestSchemaVersion(), released);
  return store;
}

SqliteTaskStore::~SqliteTaskStore() {
  queue_.Stop();
  if (writer_.joinable()) {
    writer_.join();
    absl::Status status = writer_db_.Exec("PRAGMA optimize");
    if (!status.ok()) VT_LOG_WARN("PRAGMA optimize failed: {}", status.ToString());
  }
  queue_.Close();
  // Members close in reverse order: readers, the writer connection, then
  // the lock file.
}

SqliteStoreStats SqliteTaskStore::stats() const {
  SqliteStoreStats stats;
  stats.commits = commits_.load();
  stats.ops = ops_.load();
  return stats;
}

// ------------------------------------------------------------------ blobs

std::string SqliteTaskStore::BlobFilePath(absl::string_view sha256) const {
  return absl::StrCat(blob_dir_, "/", sha256.substr(0, 2), "/", sha256);
}

absl::Status SqliteTaskStore::WriteBlobFile(absl::string_view sha256,
                                            absl::string_view bytes) const {
  std::string dir = absl::StrCat(blob_dir_, "/", sha256.substr(0, 2));
  if (::access(dir.c_str(), F_OK) != 0) {
    VT_RETURN_IF_ERROR(MakeDirs(dir));
    VT_RETURN_IF_ERROR(SyncDir(blob_dir_));
  }
  AtomicWriteOptions write_options;
  // Two threads may store one digest at once.
  write_options.unique_temp_name = true;
  return WriteFileAtomically(BlobFilePath(sha256), bytes, write_options);
}

absl::StatusOr<std::string> SqliteTaskStore::ReadImage(absl::string_view sha256) {
  VT_RETURN_IF_ERROR(internal::CheckReadDigest(sha256));
  {
    // Blob columns are read as bytes, not through the text reader.
    auto lease = readers_.Acquire();
    VT_ASSIGN_OR_RETURN(sqlite::Query query, lease.get().Prepare(table_.sql().read_blob));
    VT_RETURN_IF_ERROR(query->BindText(1, sha256));
    VT_ASSIGN_OR_RETURN(bool row, query->Step());
    if (row) return query->ColumnBlob(0);
  }
  absl::StatusOr<std::string> data =
      ReadFile(BlobFilePath(sha256), std::numeric_limits<int64_t>::max());
  if (absl::IsNotFound(data.status())) {
    return absl::NotFoundError(absl::StrCat("image ", sha256, " is not stored"));
  }
  return data;
}

// ----------------------------------------------------------------- reads

absl::Status SqliteTaskStore::WithReadSession(
    absl::FunctionRef<absl::Status(internal::SqlSession&)> fn) {
  auto lease = readers_.Acquire();
  SqliteSession session(lease.get());
  return fn(session);
}

absl::Status SqliteTaskStore::WithWriteSession(
    std::function<absl::Status(internal::SqlSession&)> fn) {
  return RunOnWriter([&](WriteContext&) {
    SqliteSession session(writer_db_);
    return fn(session);
  });
}

// ------------------------------------------------------- update / claims

absl::StatusOr<Task> SqliteTaskStore::Update(const Task& task) {
  absl::StatusOr<Task> result = absl::InternalError("update not run");
  VT_RETURN_IF_ERROR(RunOnWriter([&](WriteContext& ctx) -> absl::Status {
    result = UpdateOne(task, ctx);
    return result.status();
  }));
  return result;
}

// The fair claim of the store core, on the writer connection.
absl::StatusOr<std::vector<Task>> SqliteTaskStore::ClaimBatch(const std::string& backend, int limit,
                                                              absl::Time now,
                                                              const std::string& owner,
                                                              absl::Time lease_expiry) {
  SqliteSession session(writer_db_);
  const std::shared_ptr<const DailyBudgets> budgets = Budgets();
  return table_.Claim(session, backend, limit, now, owner, lease_expiry, budgets.get());
}

absl::StatusOr<std::vector<Task>> SqliteTaskStore::ClaimQueued(absl::string_view backend, int limit,
                                                               absl::Time now,
                                                               absl::string_view owner,
                                                               absl::Time lease_expiry) {
  if (owner.empty()) return absl::InvalidArgumentError("lease owner is empty");
  if (limit <= 0) return std::vector<Task>();
  std::vector<Task> result;
  std::string backend_copy(backend);
  std::string owner_copy(owner);
  VT_RETURN_IF_ERROR(RunOnWriter([&](WriteContext&) -> absl::Status {
    VT_ASSIGN_OR_RETURN(result, ClaimBatch(backend_copy, limit, now, owner_copy, lease_expiry));
    return absl::OkStatus();
  }));
  return result;
}

absl::Status SqliteTaskStore::RenewLeases(absl::string_view owner, absl::Time lease_expiry) {
  if (owner.empty()) return absl::InvalidArgumentError("lease owner is empty");
  std::string owner_copy(owner);
  return RunOnWriter([&](WriteContext&) -> absl::Status {
    SqliteSession session(writer_db_);
    return table_.RenewLeases(session, owner_copy, lease_expiry);
  });
}

}  // namespace videotask::store
