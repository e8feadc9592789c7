#include "server/store/sqlite_task_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/memory/memory.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "server/store/migrations.h"
#include "server/store/task_row.h"

namespace videotask::store {
namespace {

using sqlite::Database;
using sqlite::Query;
using sqlite::Statement;
using sqlite::Transaction;

// ------------------------------------------------------------ task columns

using namespace ::videotask::store::internal;  // the shared row layout (task_row.h)

const std::string& Columns() {
  static const std::string* const kColumns = new std::string(TaskColumnList());
  return *kColumns;
}

const std::string& InsertTaskSql() {
  static const std::string* const kSql = [] {
    std::vector<std::string> params;
    for (int i = 0; i < kNumColumns; ++i) params.push_back(absl::StrCat("?", i + 1));
    return new std::string(absl::StrCat("INSERT INTO tasks (", Columns(), ") VALUES (",
                                        absl::StrJoin(params, ", "), ")"));
  }();
  return *kSql;
}

const std::string& SelectByIdSql() {
  static const std::string* const kSql =
      new std::string(absl::StrCat("SELECT ", Columns(), " FROM tasks WHERE id = ?1"));
  return *kSql;
}

const std::string& SelectByRequestIdSql() {
  static const std::string* const kSql = new std::string(absl::StrCat(
      "SELECT ", Columns(), " FROM tasks WHERE request_id = ?1 AND request_id <> ''"));
  return *kSql;
}

// The mutable fields (task_store.h: all but id, request_id, spec,
// create_time, image and stub). A lease kept by the same owner is never
// shortened by a stale copy.
const std::string& UpdateTaskSql() {
  static const std::string* const kSql = new std::string(absl::StrCat(
      "UPDATE tasks SET state = ?3, provider_task_id = ?4, provider_status = ?5, progress = ?6, "
      "output_path = ?7, output_size_bytes = ?8, output_sha256 = ?9, error_code = ?10, "
      "error_message = ?11, error_retryable = ?12, error_provider_code = ?13, "
      "attempt_count = ?14, update_time = ?15, start_time = ?16, end_time = ?17, "
      "next_attempt_time = ?18, lease_owner = ?19, "
      "lease_expiry = CASE WHEN ?19 <> '' AND lease_owner = ?19 AND lease_expiry IS NOT NULL "
      "AND ?20 IS NOT NULL AND lease_expiry > ?20 THEN lease_expiry ELSE ?20 END, "
      "provider_cancel_pending = ?21, output_urls_json = ?22, version = version + 1 "
      "WHERE id = ?1 AND version = ?2 RETURNING ",
      Columns()));
  return *kSql;
}

const std::string& ClaimOneSql() {
  static const std::string* const kSql = new std::string(absl::StrCat(
      "UPDATE tasks SET state = 2, lease_owner = ?2, lease_expiry = ?3, "
      "attempt_count = attempt_count + 1, start_time = COALESCE(start_time, ?4), "
      "update_time = ?4, version = version + 1 WHERE id = ?1 AND state = 1 RETURNING ",
      Columns()));
  return *kSql;
}

const std::string& ListRecoverableSql() {
  static const std::string* const kSql = new std::string(absl::StrCat(
      "SELECT ", Columns(),
      " FROM tasks WHERE (state BETWEEN 2 AND 4 OR (state = 7 AND provider_cancel_pending = 1)) "
      "AND (lease_owner = '' OR lease_owner = ?1 OR lease_expiry IS NULL OR lease_expiry <= ?2) "
      "ORDER BY create_time, id"));
  return *kSql;
}

constexpr char kClaimCandidatesSql[] =
    "SELECT id FROM tasks WHERE state = 1 AND backend = ?1 "
    "AND (next_attempt_time IS NULL OR next_attempt_time <= ?2) "
    "AND (lease_owner = '' OR lease_expiry IS NULL OR lease_expiry <= ?2) "
    "ORDER BY priority DESC, create_time, id LIMIT ?3";
constexpr char kRenewSql[] =
    "UPDATE tasks SET lease_expiry = ?2 WHERE lease_owner = ?1 AND lease_owner <> '' "
    "AND state BETWEEN 1 AND 4";
constexpr char kVersionOfSql[] = "SELECT version FROM tasks WHERE id = ?1";
constexpr char kInsertLabelSql[] =
    "INSERT INTO task_labels (task_id, key, value) VALUES (?1, ?2, ?3)";
constexpr char kInsertBlobSql[] =
    "INSERT INTO blobs (sha256, data) VALUES (?1, ?2) ON CONFLICT (sha256) DO NOTHING";
constexpr char kReadBlobSql[] = "SELECT data FROM blobs WHERE sha256 = ?1";
constexpr char kDeleteBlobSql[] = "DELETE FROM blobs WHERE sha256 = ?1";
constexpr char kImageInUseSql[] =
    "SELECT 1 FROM tasks WHERE image_sha256 = ?1 AND image_sha256 <> '' "
    "AND state BETWEEN 1 AND 4 LIMIT 1";
constexpr char kStubCounterSql[] = "SELECT next FROM stub_counters WHERE base = ?1";
constexpr char kStubTakenSql[] = "SELECT 1 FROM tasks WHERE target_filename_stub = ?1";
constexpr char kSetStubCounterSql[] =
    "INSERT INTO stub_counters (base, next) VALUES (?1, ?2) "
    "ON CONFLICT (base) DO UPDATE SET next = excluded.next";
constexpr char kNextQueuedSql[] =
    "SELECT next_attempt_time FROM tasks WHERE state = 1 AND backend = ?1 "
    "ORDER BY next_attempt_time LIMIT 1";
constexpr char kCountQueuedSql[] = "SELECT COUNT(*) FROM tasks WHERE state = 1";
constexpr char kReleaseLeasesSql[] =
    "UPDATE tasks SET lease_owner = '', lease_expiry = NULL WHERE lease_owner <> ''";

// -------------------------------------------------------------- conversions

absl::Time ColumnTime(const Statement& st, int column) {
  if (st.ColumnIsNull(column)) return absl::InfinitePast();
  return TimeFromMicros(st.ColumnInt64(column));
}

// Collects the first bind error so a long list of binds reads as one block.
class Binder {
 public:
  explicit Binder(Statement& st) : st_(st) {}
  Binder& Null(int index) { return Keep(st_.BindNull(index)); }
  Binder& Int(int index, int64_t value) { return Keep(st_.BindInt64(index, value)); }
  Binder& Double(int index, double value) { return Keep(st_.BindDouble(index, value)); }
  Binder& Text(int index, absl::string_view value) { return Keep(st_.BindText(index, value)); }
  Binder& Blob(int index, absl::string_view value) { return Keep(st_.BindBlob(index, value)); }
  Binder& OptionalText(int index, const std::optional<std::string>& value) {
    return value.has_value() ? Text(index, *value) : Null(index);
  }
  // Unset (InfinitePast) is NULL; InfiniteFuture is INT64_MAX.
  Binder& Time(int index, absl::Time t) {
    if (t == absl::InfinitePast()) return Null(index);
    return Int(index, CompareMicros(t));
  }
  absl::Status status() const { return status_; }

 private:
  Binder& Keep(absl::Status status) {
    if (status_.ok() && !status.ok()) status_ = std::move(status);
    return *this;
  }
  Statement& st_;
  absl::Status status_;
};

// Binds every column of `t` to ?1..?N (INSERT).
absl::Status BindTask(Statement& st, const Task& t) {
  const TaskSpec& s = t.spec;
  Binder b(st);
  b.Text(kId + 1, t.id)
      .Text(kRequestId + 1, t.request_id)
      .Text(kBackend + 1, s.backend)
      .Text(kModel + 1, s.model)
      .Int(kImageSource + 1, static_cast<int>(s.image.source))
      .Text(kImageUri + 1, s.image.uri)
      .Text(kImageServerPath + 1, s.image.server_path)
      .Text(kImageFilename + 1, s.image.filename)
      .Text(kImageMimeType + 1, s.image.mime_type)
      .Text(kPromptText + 1, s.prompt_text)
      .Text(kRatio + 1, s.ratio)
      .Int(kDurationSeconds + 1, s.duration_seconds);
  if (s.seed.has_value()) {
    b.Int(kSeed + 1, *s.seed);
  } else {
    b.Null(kSeed + 1);
  }
  b.Text(kRequestedStub + 1, s.target_filename_stub)
      .OptionalText(kLabelsJson + 1, LabelsToJson(s.labels))
      .Int(kPriority + 1, s.priority)
      .Text(kPublicFigureThreshold + 1, s.public_figure_threshold)
      .Int(kState + 1, static_cast<int>(t.state))
      .Text(kProviderTaskId + 1, t.provider_task_id)
      .Text(kProviderStatus + 1, t.provider_status)
      .Double(kProgress + 1, t.progress)
      .Text(kTargetStub + 1, t.target_filename_stub)
      .Text(kOutputPath + 1, t.output_path)
      .Int(kOutputSizeBytes + 1, t.output_size_bytes)
      .Text(kOutputSha256 + 1, t.output_sha256)
      .Text(kErrorCode + 1, t.error.code)
      .Text(kErrorMessage + 1, t.error.message)
      .Int(kErrorRetryable + 1, t.error.retryable ? 1 : 0)
      .Text(kErrorProviderCode + 1, t.error.provider_code)
      .Int(kAttemptCount + 1, t.attempt_count)
      .Text(kImageSha256 + 1, t.image_sha256)
      .Int(kImageSizeBytes + 1, t.image_size_bytes)
      .Int(kCreateTime + 1, CompareMicros(t.create_time))
      .Time(kUpdateTime + 1, t.update_time)
      .Time(kStartTime + 1, t.start_time)
      .Time(kEndTime + 1, t.end_time)
      .Time(kNextAttemptTime + 1, t.next_attempt_time)
      .Text(kLeaseOwner + 1, t.lease_owner)
      .Time(kLeaseExpiry + 1, t.lease_expiry)
      .Int(kProviderCancelPending + 1, t.provider_cancel_pending ? 1 : 0)
      .OptionalText(kOutputUrlsJson + 1, UrlsToJson(t.output_urls))
      .Text(kSpecFingerprint + 1, t.spec_fingerprint)
      .Int(kVersion + 1, t.version);
  return b.status();
}

// Reads a row whose first kNumColumns columns are Columns().
absl::StatusOr<Task> ReadTask(const Statement& st) {
  Task t;
  TaskSpec& s = t.spec;
  t.id = st.ColumnText(kId);
  t.request_id = st.ColumnText(kRequestId);
  s.backend = st.ColumnText(kBackend);
  s.model = st.ColumnText(kModel);
  int64_t source = st.ColumnInt64(kImageSource);
  if (source < 0 || source > static_cast<int>(ImageSource::kServerPath)) {
    return absl::InternalError(absl::StrCat("task ", t.id, " has a bad image_source ", source));
  }
  s.image.source = static_cast<ImageSource>(source);
  s.image.uri = st.ColumnText(kImageUri);
  s.image.server_path = st.ColumnText(kImageServerPath);
  s.image.filename = st.ColumnText(kImageFilename);
  s.image.mime_type = st.ColumnText(kImageMimeType);
  s.prompt_text = st.ColumnText(kPromptText);
  s.ratio = st.ColumnText(kRatio);
  s.duration_seconds = static_cast<int>(st.ColumnInt64(kDurationSeconds));
  if (!st.ColumnIsNull(kSeed)) s.seed = static_cast<uint32_t>(st.ColumnInt64(kSeed));
  s.target_filename_stub = st.ColumnText(kRequestedStub);
  if (!st.ColumnIsNull(kLabelsJson)) {
    absl::Status status = ParseLabels(st.ColumnText(kLabelsJson), s.labels);
    if (!status.ok()) return absl::InternalError(absl::StrCat("task ", t.id, ": ", status.message()));
  }
  s.priority = static_cast<int>(st.ColumnInt64(kPriority));
  s.public_figure_threshold = st.ColumnText(kPublicFigureThreshold);
  std::optional<TaskState> state = TaskStateFromInt(static_cast<int>(st.ColumnInt64(kState)));
  if (!state.has_value()) {
    return absl::InternalError(absl::StrCat("task ", t.id, " has a bad state"));
  }
  t.state = *state;
  t.provider_task_id = st.ColumnText(kProviderTaskId);
  t.provider_status = st.ColumnText(kProviderStatus);
  t.progress = static_cast<float>(st.ColumnDouble(kProgress));
  t.target_filename_stub = st.ColumnText(kTargetStub);
  t.output_path = st.ColumnText(kOutputPath);
  t.output_size_bytes = st.ColumnInt64(kOutputSizeBytes);
  t.output_sha256 = st.ColumnText(kOutputSha256);
  t.error.code = st.ColumnText(kErrorCode);
  t.error.message = st.ColumnText(kErrorMessage);
  t.error.retryable = st.ColumnInt64(kErrorRetryable) != 0;
  t.error.provider_code = st.ColumnText(kErrorProviderCode);
  t.attempt_count = static_cast<int>(st.ColumnInt64(kAttemptCount));
  t.image_sha256 = st.ColumnText(kImageSha256);
  t.image_size_bytes = st.ColumnInt64(kImageSizeBytes);
  t.create_time = ColumnTime(st, kCreateTime);
  t.update_time = ColumnTime(st, kUpdateTime);
  t.start_time = ColumnTime(st, kStartTime);
  t.end_time = ColumnTime(st, kEndTime);
  t.next_attempt_time = ColumnTime(st, kNextAttemptTime);
  t.lease_owner = st.ColumnText(kLeaseOwner);
  t.lease_expiry = ColumnTime(st, kLeaseExpiry);
  t.provider_cancel_pending = st.ColumnInt64(kProviderCancelPending) != 0;
  if (!st.ColumnIsNull(kOutputUrlsJson)) {
    absl::Status status = ParseUrls(st.ColumnText(kOutputUrlsJson), t.output_urls);
    if (!status.ok()) return absl::InternalError(absl::StrCat("task ", t.id, ": ", status.message()));
  }
  t.spec_fingerprint = st.ColumnText(kSpecFingerprint);
  t.version = st.ColumnInt64(kVersion);
  return t;
}

absl::Status WithContext(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

bool IsHexDigest(absl::string_view sha256) {
  if (sha256.size() != 64) return false;
  return std::all_of(sha256.begin(), sha256.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

bool FileExists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

absl::StatusOr<Database> OpenConnection(const std::string& path, const SqliteStoreOptions& options,
                                        bool writer) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (writer) flags |= SQLITE_OPEN_CREATE;
  VT_ASSIGN_OR_RETURN(Database db, Database::Open(path, flags));
  VT_RETURN_IF_ERROR(db.Exec(absl::StrCat("PRAGMA busy_timeout = ",
                                          absl::ToInt64Milliseconds(options.busy_timeout))));
  VT_RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys = ON"));
  if (writer) {
    VT_ASSIGN_OR_RETURN(std::string mode, db.QueryText("PRAGMA journal_mode = WAL"));
    if (absl::AsciiStrToLower(mode) != "wal") {
      return absl::FailedPreconditionError(
          absl::StrCat("could not put ", path, " in WAL mode (got ", mode, ")"));
    }
    VT_RETURN_IF_ERROR(db.Exec("PRAGMA synchronous = FULL"));
    // Savepoint journals stay in memory instead of spilling to temp files.
    VT_RETURN_IF_ERROR(db.Exec("PRAGMA temp_store = MEMORY"));
  } else {
    VT_RETURN_IF_ERROR(db.Exec("PRAGMA query_only = ON"));
    VT_RETURN_IF_ERROR(db.Exec("PRAGMA cache_size = -4096"));  // 4 MiB
  }
  // No memory-mapped I/O: mapped pages count as the process's memory.
  VT_RETURN_IF_ERROR(db.Exec("PRAGMA mmap_size = 0"));
  return db;
}

const Clock& DefaultClock() {
  static const SystemClock* const kClock = new SystemClock();
  return *kClock;
}

}  // namespace

// ------------------------------------------------------------- write ops

struct SqliteTaskStore::WriteContext {
  absl::flat_hash_set<std::string> blob_candidates;  // digests maybe no longer needed
  std::vector<std::string> files_to_delete;           // after the commit
};

class SqliteTaskStore::WriteOp {
 public:
  virtual ~WriteOp() = default;
  // Each unit runs in its own savepoint.
  virtual int units() const = 0;
  virtual absl::Status Apply(SqliteTaskStore& store, int unit, WriteContext& ctx) = 0;
  // The unit failed, or its transaction did not commit.
  virtual void Fail(int unit, absl::Status status) = 0;
  // Every unit is settled; runs once on the writer thread.
  virtual void Complete() = 0;
};

class SqliteTaskStore::InsertOp final : public WriteOp {
 public:
  InsertOp(std::vector<NewTask> tasks, std::function<void(InsertResults)> done)
      : tasks_(std::move(tasks)),
        results_(tasks_.size(), absl::InternalError("insert not processed")),
        precheck_(tasks_.size()),
        done_(std::move(done)) {}

  int units() const override { return static_cast<int>(tasks_.size()); }
  NewTask& task(int unit) { return tasks_[unit]; }
  void SetPrecheck(int unit, absl::Status status) { precheck_[unit] = std::move(status); }

  absl::Status Apply(SqliteTaskStore& store, int unit, WriteContext& ctx) override {
    if (!precheck_[unit].ok()) return precheck_[unit];
    NewTask& item = tasks_[unit];
    absl::StatusOr<InsertResult> result = store.InsertOne(item, ctx);
    // A blob file written for an insert that created nothing may be unused.
    if ((!result.ok() || !result->created) && IsHexDigest(item.task.image_sha256)) {
      ctx.blob_candidates.insert(item.task.image_sha256);
    }
    if (!result.ok()) return result.status();
    results_[unit] = *std::move(result);
    return absl::OkStatus();
  }
  void Fail(int unit, absl::Status status) override { results_[unit] = std::move(status); }
  void Complete() override {
    tasks_.clear();  // frees image bytes before the callback runs
    done_(std::move(results_));
  }

 private:
  std::vector<NewTask> tasks_;
  InsertResults results_;
  std::vector<absl::Status> precheck_;
  std::function<void(InsertResults)> done_;
};

class SqliteTaskStore::CallOp final : public WriteOp {
 public:
  CallOp(std::function<absl::Status(WriteContext&)> fn, absl::Status* out,
         absl::Notification* done)
      : fn_(std::move(fn)), out_(out), done_(done) {}
  int units() const override { return 1; }
  absl::Status Apply(SqliteTaskStore&, int, WriteContext& ctx) override { return fn_(ctx); }
  void Fail(int, absl::Status status) override { status_ = std::move(status); }
  void Complete() override {
    *out_ = std::move(status_);
    done_->Notify();  // the waiter owns out_ and done_ from here on
  }

 private:
  std::function<absl::Status(WriteContext&)> fn_;
  absl::Status status_;
  absl::Status* out_;
  absl::Notification* done_;
};

// ----------------------------------------------------------------- readers

struct SqliteTaskStore::Reader {
  explicit Reader(Database database) : db(std::move(database)) {}
  Database db;
};

class SqliteTaskStore::ReaderLease {
 public:
  ReaderLease(SqliteTaskStore* store, Reader* reader) : store_(store), reader_(reader) {}
  ReaderLease(ReaderLease&& other) noexcept : store_(other.store_), reader_(other.reader_) {
    other.reader_ = nullptr;
  }
  ReaderLease(const ReaderLease&) = delete;
  ReaderLease& operator=(const ReaderLease&) = delete;
  ReaderLease& operator=(ReaderLease&&) = delete;
  ~ReaderLease() {
    if (reader_ != nullptr) store_->ReleaseReader(reader_);
  }
  Database& db() { return reader_->db; }

 private:
  SqliteTaskStore* store_;
  Reader* reader_;
};

SqliteTaskStore::ReaderLease SqliteTaskStore::AcquireReader() {
  readers_mu_.LockWhen(absl::Condition(
      +[](std::vector<Reader*>* free) { return !free->empty(); }, &free_readers_));
  Reader* reader = free_readers_.back();
  free_readers_.pop_back();
  readers_mu_.Unlock();
  return ReaderLease(this, reader);
}

void SqliteTaskStore::ReleaseReader(Reader* reader) {
  absl::MutexLock lock(&readers_mu_);
  free_readers_.push_back(reader);
}

// -------------------------------------------------------------- open/close

SqliteTaskStore::LockFile::~LockFile() {
  if (fd >= 0) ::close(fd);  // releases the flock
}

SqliteTaskStore::SqliteTaskStore(const SqliteStoreOptions& options, Database writer_db)
    : options_(options),
      clock_(options.clock != nullptr ? *options.clock : DefaultClock()),
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
  const std::string& dir = options.data_dir;
  VT_RETURN_IF_ERROR(MakeDirs(dir));
  VT_RETURN_IF_ERROR(MakeDirs(absl::StrCat(dir, "/blobs")));

  LockFile lock;
  std::string lock_path = absl::StrCat(dir, "/LOCK");
  lock.fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock.fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", lock_path));
  if (::flock(lock.fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("data dir ", dir, " is in use by another videotaskd process"));
    }
    return ErrnoStatus(errno, absl::StrCat("flock ", lock_path));
  }

  std::string db_path = absl::StrCat(dir, "/videotask.db");
  VT_ASSIGN_OR_RETURN(Database writer_db, OpenConnection(db_path, options, /*writer=*/true));
  VT_RETURN_IF_ERROR(WithContext(Migrate(writer_db), db_path));
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
    VT_RETURN_IF_ERROR(reader.Prepare(SelectByIdSql()).status());
    store->readers_.push_back(std::make_unique<Reader>(std::move(reader)));
  }
  {
    absl::MutexLock lock_readers(&store->readers_mu_);
    for (auto& reader : store->readers_) store->free_readers_.push_back(reader.get());
  }
  store->writer_ = std::thread(&SqliteTaskStore::WriterLoop, store.get());
  VT_LOG_INFO("task store opened at {} (schema v{}, {} stale leases released)", db_path,
              LatestSchemaVersion(), released);
  return store;
}

SqliteTaskStore::~SqliteTaskStore() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  if (writer_.joinable()) {
    writer_.join();
    absl::Status status = writer_db_.Exec("PRAGMA optimize");
    if (!status.ok()) VT_LOG_WARN("PRAGMA optimize failed: {}", status.ToString());
  } else {
    absl::MutexLock lock(&queue_mu_);
    writer_exited_ = true;
  }
  // Members close in reverse order: readers, the writer connection, then
  // the lock file.
}

SqliteStoreStats SqliteTaskStore::stats() const {
  SqliteStoreStats stats;
  stats.commits = commits_.load();
  stats.ops = ops_.load();
  return stats;
}

std::string SqliteTaskStore::BlobFilePath(absl::string_view sha256) const {
  return absl::StrCat(blob_dir_, "/", sha256.substr(0, 2), "/", sha256);
}

absl::Status SqliteTaskStore::WriteBlobFile(absl::string_view sha256,
                                            absl::string_view bytes) const {
  std::string dir = absl::StrCat(blob_dir_, "/", sha256.substr(0, 2));
  if (!FileExists(dir)) {
    VT_RETURN_IF_ERROR(MakeDirs(dir));
    VT_RETURN_IF_ERROR(SyncDir(blob_dir_));
  }
  std::string path = BlobFilePath(sha256);
  // A name of its own per writer: two threads may store one digest at once.
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid(), ".",
                                 tmp_counter_.fetch_add(1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("create ", tmp));
  auto fail = [&](absl::string_view what) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, absl::StrCat(what, " ", tmp));
  };
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("fsync");
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, absl::StrCat("close ", tmp));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, absl::StrCat("rename ", tmp));
  }
  return SyncDir(dir);
}

// ------------------------------------------------------------------ writer

bool SqliteTaskStore::OnWriterThread() const {
  return std::this_thread::get_id() == writer_.get_id();
}

bool SqliteTaskStore::Enqueue(std::unique_ptr<WriteOp>& op) {
  absl::MutexLock lock(&queue_mu_);
  if (writer_exited_) return false;
  queue_.push_back(std::move(op));
  return true;
}

void SqliteTaskStore::WriterLoop() {
  const size_t max_ops = static_cast<size_t>(options_.max_ops_per_commit);
  while (true) {
    std::vector<std::unique_ptr<WriteOp>> batch;
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.Await(absl::Condition(
          +[](SqliteTaskStore* s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return !s->queue_.empty() || s->stopping_;
          },
          this));
      if (queue_.empty()) {  // stopping, and everything is done
        writer_exited_ = true;
        return;
      }
      if (queue_.size() <= max_ops) {
        batch.swap(queue_);
      } else {
        batch.reserve(max_ops);
        for (size_t i = 0; i < max_ops; ++i) batch.push_back(std::move(queue_[i]));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(max_ops));
      }
    }
    ProcessBatch(batch);
  }
}

void SqliteTaskStore::ProcessBatch(std::vector<std::unique_ptr<WriteOp>>& ops) {
  std::vector<std::pair<WriteOp*, int>> units;
  for (auto& op : ops) {
    for (int u = 0; u < op->units(); ++u) units.emplace_back(op.get(), u);
  }
  size_t next = 0;
  while (next < units.size()) {
    absl::StatusOr<Transaction> tx = Transaction::Begin(writer_db_, Transaction::Mode::kImmediate);
    if (!tx.ok()) {
      VT_LOG_ERROR("task store: cannot begin a write transaction: {}", tx.status().ToString());
      for (; next < units.size(); ++next) units[next].first->Fail(units[next].second, tx.status());
      break;
    }
    WriteContext ctx;
    std::vector<std::pair<WriteOp*, int>> applied;
    bool lost = false;
    for (; next < units.size() && !lost; ++next) {
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
        lost = true;
        absl::Status aborted = WithContext(status, "write transaction rolled back");
        for (auto& [done_op, done_unit] : applied) done_op->Fail(done_unit, aborted);
      }
      op->Fail(unit, std::move(status));
    }
    if (lost) continue;  // `tx` rolls back whatever is left

    if (!ctx.blob_candidates.empty()) {
      absl::Status status = writer_db_.Exec("SAVEPOINT blobs");
      if (status.ok()) status = DeleteUnusedBlobs(ctx);
      if (status.ok()) status = writer_db_.Exec("RELEASE blobs");
      if (!status.ok()) {
        VT_LOG_WARN("task store: blob cleanup skipped: {}", status.ToString());
        ctx.files_to_delete.clear();
        if (!writer_db_.InAutocommit()) {
          absl::Status undo = writer_db_.Exec("ROLLBACK TO blobs");
          if (undo.ok()) undo = writer_db_.Exec("RELEASE blobs");
          if (!undo.ok()) VT_LOG_WARN("task store: rollback of blob cleanup failed");
        }
      }
    }
    absl::Status commit = writer_db_.InAutocommit()
                              ? absl::InternalError("write transaction ended early")
                              : tx->Commit();
    if (!commit.ok()) {
      VT_LOG_ERROR("task store: commit failed: {}", commit.ToString());
      absl::Status failed = WithContext(commit, "commit");
      for (auto& [op, unit] : applied) op->Fail(unit, failed);
      continue;
    }
    commits_.fetch_add(1);
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
  for (const std::string& sha : ctx.blob_candidates) {
    {
      VT_ASSIGN_OR_RETURN(Query in_use, writer_db_.Prepare(kImageInUseSql));
      VT_RETURN_IF_ERROR(in_use->BindText(1, sha));
      VT_ASSIGN_OR_RETURN(bool used, in_use->Step());
      if (used) continue;
    }
    VT_ASSIGN_OR_RETURN(Query del, writer_db_.Prepare(kDeleteBlobSql));
    VT_RETURN_IF_ERROR(del->BindText(1, sha));
    VT_RETURN_IF_ERROR(del->Run());
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
    if (sha.empty()) continue;
    if (!IsHexDigest(sha)) {
      op->SetPrecheck(i, absl::InvalidArgumentError(absl::StrCat(
                             "task ", item.task.id, ": image_sha256 is not a lower-case hex digest")));
      continue;
    }
    // Large blobs are durable before the insert is even queued.
    if (static_cast<int64_t>(item.image_bytes.size()) > options_.inline_blob_max_bytes &&
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
  int64_t n = 0;  // 0: try the base itself
  {
    VT_ASSIGN_OR_RETURN(Query counter, writer_db_.Prepare(kStubCounterSql));
    VT_RETURN_IF_ERROR(counter->BindText(1, base));
    VT_ASSIGN_OR_RETURN(bool row, counter->Step());
    if (row) n = counter->ColumnInt64(0);
  }
  std::string candidate;
  while (true) {
    candidate = n < 2 ? base : absl::StrCat(base, "_", n);
    VT_ASSIGN_OR_RETURN(Query taken, writer_db_.Prepare(kStubTakenSql));
    VT_RETURN_IF_ERROR(taken->BindText(1, candidate));
    VT_ASSIGN_OR_RETURN(bool row, taken->Step());
    if (!row) break;
    n = n < 2 ? 2 : n + 1;
  }
  VT_ASSIGN_OR_RETURN(Query set, writer_db_.Prepare(kSetStubCounterSql));
  Binder b(*set);
  b.Text(1, base).Int(2, n < 2 ? 2 : n + 1);
  VT_RETURN_IF_ERROR(b.status());
  VT_RETURN_IF_ERROR(set->Run());
  return candidate;
}

absl::StatusOr<InsertResult> SqliteTaskStore::InsertOne(NewTask& item, WriteContext& ctx) {
  Task task = item.task;
  if (task.id.empty()) return absl::InvalidArgumentError("task id is empty");
  if (task.target_filename_stub.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("task ", task.id, ": target_filename_stub is empty"));
  }
  if (!task.request_id.empty()) {
    VT_ASSIGN_OR_RETURN(Query existing, writer_db_.Prepare(SelectByRequestIdSql()));
    VT_RETURN_IF_ERROR(existing->BindText(1, task.request_id));
    VT_ASSIGN_OR_RETURN(bool row, existing->Step());
    if (row) {
      VT_ASSIGN_OR_RETURN(Task found, ReadTask(*existing));
      if (found.spec_fingerprint != task.spec_fingerprint) {
        return absl::AlreadyExistsError(
            absl::StrCat("request_id \"", task.request_id, "\" was already used by task ",
                         found.id, " with a different spec"));
      }
      InsertResult result;
      result.task = std::move(found);
      result.created = false;
      return result;
    }
  }

  const std::string& sha = task.image_sha256;
  if (!sha.empty() && !item.image_bytes.empty()) {
    if (static_cast<int64_t>(item.image_bytes.size()) <= options_.inline_blob_max_bytes) {
      VT_ASSIGN_OR_RETURN(Query blob, writer_db_.Prepare(kInsertBlobSql));
      Binder b(*blob);
      b.Text(1, sha).Blob(2, item.image_bytes);
      VT_RETURN_IF_ERROR(b.status());
      VT_RETURN_IF_ERROR(blob->Run());
    } else if (!FileExists(BlobFilePath(sha))) {
      // Deleted after the caller checked (the last task using it ended).
      VT_RETURN_IF_ERROR(WithContext(WriteBlobFile(sha, item.image_bytes),
                                     absl::StrCat("store image of task ", task.id)));
    }
  }

  VT_ASSIGN_OR_RETURN(task.target_filename_stub, AllocateStub(task.target_filename_stub));
  if (task.create_time == absl::InfinitePast()) task.create_time = clock_.Now();
  if (task.update_time == absl::InfinitePast()) task.update_time = task.create_time;
  task.version = 1;
  {
    VT_ASSIGN_OR_RETURN(Query insert, writer_db_.Prepare(InsertTaskSql()));
    VT_RETURN_IF_ERROR(BindTask(*insert, task));
    VT_RETURN_IF_ERROR(WithContext(insert->Run(), absl::StrCat("insert task ", task.id)));
  }
  for (const auto& [key, value] : task.spec.labels) {
    VT_ASSIGN_OR_RETURN(Query label, writer_db_.Prepare(kInsertLabelSql));
    Binder b(*label);
    b.Text(1, task.id).Text(2, key).Text(3, value);
    VT_RETURN_IF_ERROR(b.status());
    VT_RETURN_IF_ERROR(label->Run());
  }
  if (IsTerminal(task.state) && !sha.empty()) ctx.blob_candidates.insert(sha);
  InsertResult result;
  result.task = std::move(task);
  result.created = true;
  return result;
}

// ------------------------------------------------------- update / claims

absl::StatusOr<Task> SqliteTaskStore::UpdateOne(const Task& task, WriteContext& ctx) {
  {
    VT_ASSIGN_OR_RETURN(Query update, writer_db_.Prepare(UpdateTaskSql()));
    Binder b(*update);
    b.Text(1, task.id)
        .Int(2, task.version)
        .Int(3, static_cast<int>(task.state))
        .Text(4, task.provider_task_id)
        .Text(5, task.provider_status)
        .Double(6, task.progress)
        .Text(7, task.output_path)
        .Int(8, task.output_size_bytes)
        .Text(9, task.output_sha256)
        .Text(10, task.error.code)
        .Text(11, task.error.message)
        .Int(12, task.error.retryable ? 1 : 0)
        .Text(13, task.error.provider_code)
        .Int(14, task.attempt_count)
        .Time(15, task.update_time)
        .Time(16, task.start_time)
        .Time(17, task.end_time)
        .Time(18, task.next_attempt_time)
        .Text(19, task.lease_owner)
        .Time(20, task.lease_expiry)
        .Int(21, task.provider_cancel_pending ? 1 : 0)
        .OptionalText(22, UrlsToJson(task.output_urls));
    VT_RETURN_IF_ERROR(b.status());
    VT_ASSIGN_OR_RETURN(bool row, update->Step());
    if (row) {
      VT_ASSIGN_OR_RETURN(Task stored, ReadTask(*update));
      if (IsTerminal(stored.state) && !stored.image_sha256.empty()) {
        ctx.blob_candidates.insert(stored.image_sha256);
      }
      return stored;
    }
  }
  VT_ASSIGN_OR_RETURN(Query version, writer_db_.Prepare(kVersionOfSql));
  VT_RETURN_IF_ERROR(version->BindText(1, task.id));
  VT_ASSIGN_OR_RETURN(bool row, version->Step());
  if (!row) return absl::NotFoundError(absl::StrCat("task ", task.id, " not found"));
  return absl::AbortedError(absl::StrCat("task ", task.id, " changed meanwhile (stored version ",
                                         version->ColumnInt64(0), ", given ", task.version, ")"));
}

absl::StatusOr<Task> SqliteTaskStore::Update(const Task& task) {
  absl::StatusOr<Task> result = absl::InternalError("update not run");
  VT_RETURN_IF_ERROR(RunOnWriter([&](WriteContext& ctx) -> absl::Status {
    result = UpdateOne(task, ctx);
    return result.status();
  }));
  return result;
}

absl::StatusOr<std::vector<Task>> SqliteTaskStore::ClaimBatch(const std::string& backend,
                                                              int limit, absl::Time now,
                                                              const std::string& owner,
                                                              absl::Time lease_expiry) {
  std::vector<std::string> ids;
  {
    VT_ASSIGN_OR_RETURN(Query candidates, writer_db_.Prepare(kClaimCandidatesSql));
    Binder b(*candidates);
    b.Text(1, backend).Int(2, CompareMicros(now)).Int(3, limit);
    VT_RETURN_IF_ERROR(b.status());
    while (true) {
      VT_ASSIGN_OR_RETURN(bool row, candidates->Step());
      if (!row) break;
      ids.push_back(candidates->ColumnText(0));
    }
  }
  std::vector<Task> claimed;
  claimed.reserve(ids.size());
  for (const std::string& id : ids) {
    VT_ASSIGN_OR_RETURN(Query claim, writer_db_.Prepare(ClaimOneSql()));
    Binder b(*claim);
    b.Text(1, id).Text(2, owner).Time(3, lease_expiry).Time(4, now);
    VT_RETURN_IF_ERROR(b.status());
    VT_ASSIGN_OR_RETURN(bool row, claim->Step());
    if (!row) return absl::InternalError(absl::StrCat("claimed task ", id, " vanished"));
    VT_ASSIGN_OR_RETURN(Task task, ReadTask(*claim));
    claimed.push_back(std::move(task));
  }
  return claimed;
}

absl::StatusOr<std::vector<Task>> SqliteTaskStore::ClaimQueued(absl::string_view backend,
                                                               int limit, absl::Time now,
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

absl::Status SqliteTaskStore::RenewAll(const std::string& owner, absl::Time lease_expiry) {
  VT_ASSIGN_OR_RETURN(Query renew, writer_db_.Prepare(kRenewSql));
  Binder b(*renew);
  b.Text(1, owner).Time(2, lease_expiry);
  VT_RETURN_IF_ERROR(b.status());
  return renew->Run();
}

absl::Status SqliteTaskStore::RenewLeases(absl::string_view owner, absl::Time lease_expiry) {
  if (owner.empty()) return absl::InvalidArgumentError("lease owner is empty");
  std::string owner_copy(owner);
  return RunOnWriter(
      [&](WriteContext&) -> absl::Status { return RenewAll(owner_copy, lease_expiry); });
}

// ----------------------------------------------------------------- reads

absl::StatusOr<Task> SqliteTaskStore::Get(absl::string_view id) {
  ReaderLease reader = AcquireReader();
  VT_ASSIGN_OR_RETURN(Query query, reader.db().Prepare(SelectByIdSql()));
  VT_RETURN_IF_ERROR(query->BindText(1, id));
  VT_ASSIGN_OR_RETURN(bool row, query->Step());
  if (!row) return absl::NotFoundError(absl::StrCat("task ", id, " not found"));
  return ReadTask(*query);
}

absl::StatusOr<ListPage> SqliteTaskStore::List(const ListQuery& query) {
  const int page_size = std::clamp(query.page_size, 1, 1000);
  std::vector<int> states;
  for (TaskState state : query.states) states.push_back(static_cast<int>(state));
  std::sort(states.begin(), states.end());
  states.erase(std::unique(states.begin(), states.end()), states.end());

  // Filters shared by every branch; parameters: ?1 limit, ?2/?3 cursor,
  // ?4 backend, then label pairs, then states.
  std::string filters;
  if (query.after.has_value()) {
    absl::StrAppend(&filters, " AND create_time <= ?2 AND (create_time, id) < (?2, ?3)");
  }
  if (!query.backend.empty()) absl::StrAppend(&filters, " AND backend = ?4");
  int param = 5;
  for (size_t i = 0; i < query.labels.size(); ++i) {
    absl::StrAppend(&filters,
                    " AND EXISTS (SELECT 1 FROM task_labels l WHERE l.task_id = tasks.id"
                    " AND l.key = ?",
                    param, " AND l.value = ?", param + 1, ")");
    param += 2;
  }
  const int first_state_param = param;
  constexpr char kOrder[] = " ORDER BY create_time DESC, id DESC LIMIT ?1";
  std::string sql;
  if (states.size() <= 1) {
    sql = absl::StrCat("SELECT ", Columns(), " FROM tasks WHERE 1", filters);
    if (states.size() == 1) absl::StrAppend(&sql, " AND state = ?", first_state_param);
    absl::StrAppend(&sql, kOrder);
  } else {
    // One index range per state (state, create_time, id), merged: no sort
    // of every matching row.
    std::vector<std::string> branches;
    for (size_t i = 0; i < states.size(); ++i) {
      branches.push_back(absl::StrCat("SELECT * FROM (SELECT ", Columns(),
                                      " FROM tasks WHERE state = ?",
                                      first_state_param + static_cast<int>(i), filters, kOrder,
                                      ")"));
    }
    sql = absl::StrCat(absl::StrJoin(branches, " UNION ALL "), kOrder);
  }

  ReaderLease reader = AcquireReader();
  VT_ASSIGN_OR_RETURN(Query stmt, reader.db().Prepare(sql));
  Binder b(*stmt);
  b.Int(1, page_size + 1);
  if (query.after.has_value()) {
    b.Int(2, CompareMicros(query.after->create_time)).Text(3, query.after->id);
  }
  if (!query.backend.empty()) b.Text(4, query.backend);
  param = 5;
  for (const auto& [key, value] : query.labels) {
    b.Text(param, key).Text(param + 1, value);
    param += 2;
  }
  for (size_t i = 0; i < states.size(); ++i) {
    b.Int(first_state_param + static_cast<int>(i), states[i]);
  }
  VT_RETURN_IF_ERROR(b.status());

  ListPage page;
  page.tasks.reserve(static_cast<size_t>(page_size));
  while (true) {
    VT_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) break;
    if (static_cast<int>(page.tasks.size()) == page_size) {
      page.has_more = true;
      break;
    }
    VT_ASSIGN_OR_RETURN(Task task, ReadTask(*stmt));
    page.tasks.push_back(std::move(task));
  }
  return page;
}

absl::StatusOr<std::vector<Task>> SqliteTaskStore::ListRecoverable(absl::string_view owner,
                                                                   absl::Time now) {
  ReaderLease reader = AcquireReader();
  VT_ASSIGN_OR_RETURN(Query query, reader.db().Prepare(ListRecoverableSql()));
  Binder b(*query);
  b.Text(1, owner).Int(2, CompareMicros(now));
  VT_RETURN_IF_ERROR(b.status());
  std::vector<Task> tasks;
  while (true) {
    VT_ASSIGN_OR_RETURN(bool row, query->Step());
    if (!row) break;
    VT_ASSIGN_OR_RETURN(Task task, ReadTask(*query));
    tasks.push_back(std::move(task));
  }
  return tasks;
}

absl::StatusOr<absl::Time> SqliteTaskStore::NextQueuedTime(absl::string_view backend) {
  ReaderLease reader = AcquireReader();
  VT_ASSIGN_OR_RETURN(Query query, reader.db().Prepare(kNextQueuedSql));
  VT_RETURN_IF_ERROR(query->BindText(1, backend));
  VT_ASSIGN_OR_RETURN(bool row, query->Step());
  if (!row) return absl::InfiniteFuture();
  return ColumnTime(*query, 0);
}

absl::StatusOr<int64_t> SqliteTaskStore::CountQueued() {
  ReaderLease reader = AcquireReader();
  return reader.db().QueryInt64(kCountQueuedSql);
}

absl::StatusOr<std::string> SqliteTaskStore::ReadImage(absl::string_view sha256) {
  if (!IsHexDigest(sha256)) {
    return absl::InvalidArgumentError("image digest must be 64 lower-case hex characters");
  }
  {
    ReaderLease reader = AcquireReader();
    VT_ASSIGN_OR_RETURN(Query query, reader.db().Prepare(kReadBlobSql));
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

}  // namespace videotask::store
