#include "server/store/postgres/pg_task_store.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/memory/memory.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "server/store/postgres/pg_migrations.h"
#include "server/store/task_row.h"

namespace videotask::store {
namespace {

using pg::Connection;
using pg::Params;
using pg::Result;

using namespace ::videotask::store::internal;  // the shared row layout (task_row.h)

const std::string& Columns() {
  static const std::string* const kColumns = new std::string(TaskColumnList());
  return *kColumns;
}

const std::string& InsertTaskSql() {
  static const std::string* const kSql = [] {
    std::vector<std::string> params;
    for (int i = 0; i < kNumColumns; ++i) params.push_back(absl::StrCat("$", i + 1));
    return new std::string(absl::StrCat("INSERT INTO tasks (", Columns(), ") VALUES (",
                                        absl::StrJoin(params, ", "), ")"));
  }();
  return *kSql;
}

const std::string& SelectByIdSql() {
  static const std::string* const kSql =
      new std::string(absl::StrCat("SELECT ", Columns(), " FROM tasks WHERE id = $1"));
  return *kSql;
}

const std::string& SelectByIdsSql() {
  static const std::string* const kSql = new std::string(
      absl::StrCat("SELECT ", Columns(), " FROM tasks WHERE id = ANY($1::text[])"));
  return *kSql;
}

const std::string& SelectByRequestIdSql() {
  static const std::string* const kSql = new std::string(absl::StrCat(
      "SELECT ", Columns(), " FROM tasks WHERE request_id = $1 AND request_id <> ''"));
  return *kSql;
}

// The mutable fields; a lease kept by the same owner is never shortened by
// a stale copy (see SqliteTaskStore).
const std::string& UpdateTaskSql() {
  static const std::string* const kSql = new std::string(absl::StrCat(
      "UPDATE tasks SET state = $3, provider_task_id = $4, provider_status = $5, progress = $6, "
      "output_path = $7, output_size_bytes = $8, output_sha256 = $9, error_code = $10, "
      "error_message = $11, error_retryable = $12, error_provider_code = $13, "
      "attempt_count = $14, update_time = $15, start_time = $16, end_time = $17, "
      "next_attempt_time = $18, lease_owner = $19::text, "
      "lease_expiry = CASE WHEN $19::text <> '' AND lease_owner = $19::text "
      "AND lease_expiry IS NOT NULL AND $20::bigint IS NOT NULL AND lease_expiry > $20::bigint "
      "THEN lease_expiry ELSE $20::bigint END, "
      "provider_cancel_pending = $21, output_urls_json = $22, version = version + 1 "
      "WHERE id = $1 AND version = $2 RETURNING ",
      Columns()));
  return *kSql;
}

// One statement: picks the claimable tasks (skipping rows another
// transaction holds) and moves them to SUBMITTING.
const std::string& ClaimSql() {
  static const std::string* const kSql = new std::string(absl::StrCat(
      "WITH picked AS (SELECT id FROM tasks WHERE state = 1 AND backend = $1 "
      "AND (next_attempt_time IS NULL OR next_attempt_time <= $4) "
      "AND (lease_owner = '' OR lease_expiry IS NULL OR lease_expiry <= $4) "
      "ORDER BY priority DESC, create_time, id LIMIT $5 FOR UPDATE SKIP LOCKED) "
      "UPDATE tasks t SET state = 2, lease_owner = $2, lease_expiry = $3, "
      "attempt_count = t.attempt_count + 1, start_time = COALESCE(t.start_time, $4), "
      "update_time = $4, version = t.version + 1 FROM picked WHERE t.id = picked.id "
      "AND t.state = 1 RETURNING ",
      TaskColumnList("t.")));
  return *kSql;
}

const std::string& ListRecoverableSql() {
  static const std::string* const kSql = new std::string(absl::StrCat(
      "SELECT ", Columns(),
      " FROM tasks WHERE (state BETWEEN 2 AND 4 OR (state = 7 AND provider_cancel_pending = 1)) "
      "AND (lease_owner = '' OR lease_owner = $1 OR lease_expiry IS NULL OR lease_expiry <= $2) "
      "ORDER BY create_time, id"));
  return *kSql;
}

constexpr char kRenewSql[] =
    "UPDATE tasks SET lease_expiry = $2 WHERE lease_owner = $1 AND lease_owner <> '' "
    "AND state BETWEEN 1 AND 4";
constexpr char kVersionOfSql[] = "SELECT version FROM tasks WHERE id = $1";
constexpr char kInsertLabelsSql[] =
    "INSERT INTO task_labels (task_id, key, value) "
    "SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS l (k, v)";
// Touching an existing row locks it: a concurrent cleanup waits for us.
constexpr char kUpsertBlobSql[] =
    "INSERT INTO blobs (sha256, data) VALUES ($1, $2) "
    "ON CONFLICT (sha256) DO UPDATE SET sha256 = excluded.sha256";
constexpr char kLockBlobSql[] = "SELECT 1 FROM blobs WHERE sha256 = $1 FOR UPDATE";
constexpr char kReadBlobSql[] = "SELECT data FROM blobs WHERE sha256 = $1";
constexpr char kDeleteBlobSql[] = "DELETE FROM blobs WHERE sha256 = $1";
constexpr char kImageInUseSql[] =
    "SELECT 1 FROM tasks WHERE image_sha256 = $1 AND image_sha256 <> '' "
    "AND state BETWEEN 1 AND 4 LIMIT 1";
// Stub counters are hints (where to start probing for a free stub), read
// without locking and raised after each insert transaction commits; the
// unique index on target_filename_stub is what guarantees uniqueness.
constexpr char kStubHintSql[] = "SELECT next FROM stub_counters WHERE base = $1";
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
constexpr char kNextQueuedSql[] =
    "SELECT next_attempt_time FROM tasks WHERE state = 1 AND backend = $1 "
    "ORDER BY next_attempt_time NULLS FIRST LIMIT 1";
constexpr char kCountQueuedSql[] = "SELECT COUNT(*) FROM tasks WHERE state = 1";
constexpr char kUpsertLimitsSql[] =
    "INSERT INTO backend_limits (backend, max_concurrency, min_submit_interval_us) "
    "VALUES ($1, $2, $3) ON CONFLICT (backend) DO UPDATE SET "
    "max_concurrency = excluded.max_concurrency, "
    "min_submit_interval_us = excluded.min_submit_interval_us";
constexpr char kEnsureLimitsSql[] =
    "INSERT INTO backend_limits (backend, max_concurrency, min_submit_interval_us) "
    "VALUES ($1, $2, $3) ON CONFLICT (backend) DO NOTHING";
constexpr char kLockLimitsSql[] =
    "SELECT next_free_at FROM backend_limits WHERE backend = $1 FOR UPDATE";
constexpr char kCountActiveSql[] =
    "SELECT COUNT(*) FROM tasks WHERE backend = $1 AND state BETWEEN 2 AND 4";
constexpr char kSetNextFreeSql[] =
    "UPDATE backend_limits SET next_free_at = $2 WHERE backend = $1";
constexpr char kChannel[] = "videotask_tasks";

constexpr int kMaxTxAttempts = 5;

// -------------------------------------------------------------- conversions

// Unset (InfinitePast) is NULL; InfiniteFuture is INT64_MAX.
Params& AddTime(Params& p, absl::Time t) {
  if (t == absl::InfinitePast()) return p.Null();
  return p.Int(CompareMicros(t));
}

absl::Time ColumnTime(const Result& r, int row, int col) {
  if (r.IsNull(row, col)) return absl::InfinitePast();
  return TimeFromMicros(r.Int(row, col));
}


Params TaskParams(const Task& t) {
  const TaskSpec& s = t.spec;
  Params p;
  p.Text(t.id)
      .Text(t.request_id)
      .Text(s.backend)
      .Text(s.model)
      .Int(static_cast<int>(s.image.source))
      .Text(s.image.uri)
      .Text(s.image.server_path)
      .Text(s.image.filename)
      .Text(s.image.mime_type)
      .Text(s.prompt_text)
      .Text(s.ratio)
      .Int(s.duration_seconds);
  if (s.seed.has_value()) {
    p.Int(*s.seed);
  } else {
    p.Null();
  }
  p.Text(s.target_filename_stub)
      .OptionalText(LabelsToJson(s.labels))
      .Int(s.priority)
      .Text(s.public_figure_threshold)
      .Int(static_cast<int>(t.state))
      .Text(t.provider_task_id)
      .Text(t.provider_status)
      .Double(t.progress)
      .Text(t.target_filename_stub)
      .Text(t.output_path)
      .Int(t.output_size_bytes)
      .Text(t.output_sha256)
      .Text(t.error.code)
      .Text(t.error.message)
      .Int(t.error.retryable ? 1 : 0)
      .Text(t.error.provider_code)
      .Int(t.attempt_count)
      .Text(t.image_sha256)
      .Int(t.image_size_bytes)
      .Int(CompareMicros(t.create_time));
  AddTime(p, t.update_time);
  AddTime(p, t.start_time);
  AddTime(p, t.end_time);
  AddTime(p, t.next_attempt_time);
  p.Text(t.lease_owner);
  AddTime(p, t.lease_expiry);
  p.Int(t.provider_cancel_pending ? 1 : 0)
      .OptionalText(UrlsToJson(t.output_urls))
      .Text(t.spec_fingerprint)
      .Int(t.version);
  return p;
}

// Reads row `row` whose first kNumColumns columns are Columns().
absl::StatusOr<Task> ReadTask(const Result& r, int row) {
  Task t;
  TaskSpec& s = t.spec;
  t.id = r.Text(row, kId);
  t.request_id = r.Text(row, kRequestId);
  s.backend = r.Text(row, kBackend);
  s.model = r.Text(row, kModel);
  int64_t source = r.Int(row, kImageSource);
  if (source < 0 || source > static_cast<int>(ImageSource::kServerPath)) {
    return absl::InternalError(absl::StrCat("task ", t.id, " has a bad image_source ", source));
  }
  s.image.source = static_cast<ImageSource>(source);
  s.image.uri = r.Text(row, kImageUri);
  s.image.server_path = r.Text(row, kImageServerPath);
  s.image.filename = r.Text(row, kImageFilename);
  s.image.mime_type = r.Text(row, kImageMimeType);
  s.prompt_text = r.Text(row, kPromptText);
  s.ratio = r.Text(row, kRatio);
  s.duration_seconds = static_cast<int>(r.Int(row, kDurationSeconds));
  if (!r.IsNull(row, kSeed)) s.seed = static_cast<uint32_t>(r.Int(row, kSeed));
  s.target_filename_stub = r.Text(row, kRequestedStub);
  if (!r.IsNull(row, kLabelsJson)) {
    absl::Status status = ParseLabels(r.Text(row, kLabelsJson), s.labels);
    if (!status.ok()) return absl::InternalError(absl::StrCat("task ", t.id, ": ", status.message()));
  }
  s.priority = static_cast<int>(r.Int(row, kPriority));
  s.public_figure_threshold = r.Text(row, kPublicFigureThreshold);
  std::optional<TaskState> state = TaskStateFromInt(static_cast<int>(r.Int(row, kState)));
  if (!state.has_value()) return absl::InternalError(absl::StrCat("task ", t.id, " has a bad state"));
  t.state = *state;
  t.provider_task_id = r.Text(row, kProviderTaskId);
  t.provider_status = r.Text(row, kProviderStatus);
  t.progress = static_cast<float>(r.Double(row, kProgress));
  t.target_filename_stub = r.Text(row, kTargetStub);
  t.output_path = r.Text(row, kOutputPath);
  t.output_size_bytes = r.Int(row, kOutputSizeBytes);
  t.output_sha256 = r.Text(row, kOutputSha256);
  t.error.code = r.Text(row, kErrorCode);
  t.error.message = r.Text(row, kErrorMessage);
  t.error.retryable = r.Int(row, kErrorRetryable) != 0;
  t.error.provider_code = r.Text(row, kErrorProviderCode);
  t.attempt_count = static_cast<int>(r.Int(row, kAttemptCount));
  t.image_sha256 = r.Text(row, kImageSha256);
  t.image_size_bytes = r.Int(row, kImageSizeBytes);
  t.create_time = ColumnTime(r, row, kCreateTime);
  t.update_time = ColumnTime(r, row, kUpdateTime);
  t.start_time = ColumnTime(r, row, kStartTime);
  t.end_time = ColumnTime(r, row, kEndTime);
  t.next_attempt_time = ColumnTime(r, row, kNextAttemptTime);
  t.lease_owner = r.Text(row, kLeaseOwner);
  t.lease_expiry = ColumnTime(r, row, kLeaseExpiry);
  t.provider_cancel_pending = r.Int(row, kProviderCancelPending) != 0;
  if (!r.IsNull(row, kOutputUrlsJson)) {
    absl::Status status = ParseUrls(r.Text(row, kOutputUrlsJson), t.output_urls);
    if (!status.ok()) return absl::InternalError(absl::StrCat("task ", t.id, ": ", status.message()));
  }
  t.spec_fingerprint = r.Text(row, kSpecFingerprint);
  t.version = r.Int(row, kVersion);
  return t;
}

absl::StatusOr<std::vector<Task>> ReadTasks(const Result& r) {
  std::vector<Task> tasks;
  tasks.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    VT_ASSIGN_OR_RETURN(Task t, ReadTask(r, i));
    tasks.push_back(std::move(t));
  }
  return tasks;
}

absl::Status WithContext(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  absl::Status out(status.code(), absl::StrCat(context, ": ", status.message()));
  status.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

bool IsRacedInsert(const absl::Status& status) {
  if (pg::SqlState(status) != pg::kUniqueViolation) return false;
  const std::string constraint = pg::ConstraintOf(status);
  return constraint == "tasks_request_id" || constraint == "tasks_stub";
}

bool IsHexDigest(absl::string_view sha256) {
  if (sha256.size() != 64) return false;
  return std::all_of(sha256.begin(), sha256.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

// A PostgreSQL array literal of text values.
std::string TextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

const Clock& DefaultClock() {
  static const SystemClock* const kClock = new SystemClock();
  return *kClock;
}

std::string NewOrigin() {
  absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen),
                         absl::Uniform<uint64_t>(gen));
}

}  // namespace

// ------------------------------------------------------------- insert ops

struct PgTaskStore::InsertOp {
  InsertOp(std::vector<NewTask> t, std::function<void(InsertResults)> d)
      : tasks(std::move(t)),
        results(tasks.size(), absl::InternalError("insert not processed")),
        precheck(tasks.size()),
        done(std::move(d)) {}
  std::vector<NewTask> tasks;
  InsertResults results;
  std::vector<absl::Status> precheck;
  std::function<void(InsertResults)> done;
};

// ------------------------------------------------------------------- pool

class PgTaskStore::ConnLease {
 public:
  ConnLease(PgTaskStore* store, Connection* conn) : store_(store), conn_(conn) {}
  ConnLease(ConnLease&& other) noexcept : store_(other.store_), conn_(other.conn_) {
    other.conn_ = nullptr;
  }
  ConnLease(const ConnLease&) = delete;
  ConnLease& operator=(const ConnLease&) = delete;
  ConnLease& operator=(ConnLease&&) = delete;
  ~ConnLease() {
    if (conn_ != nullptr) store_->ReleaseConn(conn_);
  }
  Connection& conn() { return *conn_; }

 private:
  PgTaskStore* store_;
  Connection* conn_;
};

PgTaskStore::ConnLease PgTaskStore::AcquireConn() {
  pool_mu_.LockWhen(absl::Condition(
      +[](std::vector<Connection*>* free) { return !free->empty(); }, &free_conns_));
  Connection* conn = free_conns_.back();
  free_conns_.pop_back();
  pool_mu_.Unlock();
  if (!conn->ok()) {
    if (conn->Reset()) {
      // A new session: tag it again for the change feed.
      absl::Status tagged =
          conn->Exec("SELECT set_config('videotask.origin', $1, false)", Params().Text(origin_))
              .status();
      if (!tagged.ok()) VT_LOG_WARN("task store: {}", tagged.ToString());
    }
  }
  return ConnLease(this, conn);
}

void PgTaskStore::ReleaseConn(Connection* conn) {
  absl::MutexLock lock(&pool_mu_);
  free_conns_.push_back(conn);
}

absl::StatusOr<Connection> PgTaskStore::Connect() {
  VT_ASSIGN_OR_RETURN(Connection conn, Connection::Open(options_.conninfo));
  VT_RETURN_IF_ERROR(
      conn.Exec("SELECT set_config('videotask.origin', $1, false)", Params().Text(origin_))
          .status());
  return conn;
}

absl::Status PgTaskStore::InTransaction(Connection& conn,
                                        const std::function<absl::Status(Connection&)>& fn) {
  absl::Status status;
  for (int attempt = 0; attempt < kMaxTxAttempts; ++attempt) {
    if (!conn.ok() && !conn.Reset()) {
      return absl::UnavailableError("PostgreSQL connection lost and could not be re-established");
    }
    status = conn.Run("BEGIN");
    if (!status.ok()) continue;
    status = fn(conn);
    if (status.ok()) status = conn.Run("COMMIT");
    if (status.ok()) return status;
    (void)conn.Run("ROLLBACK");
    if (!pg::IsRetryableTxError(status)) return status;
  }
  return status;
}

// ------------------------------------------------------------- open/close

PgTaskStore::PgTaskStore(const PgStoreOptions& options)
    : options_(options),
      clock_(options.clock != nullptr ? *options.clock : DefaultClock()),
      origin_(NewOrigin()) {}

absl::StatusOr<std::unique_ptr<PgTaskStore>> PgTaskStore::Open(const PgStoreOptions& options) {
  if (options.conninfo.empty()) return absl::InvalidArgumentError("PostgreSQL conninfo is empty");
  if (options.pool_connections < 1 || options.insert_threads < 1 ||
      options.max_ops_per_commit < 1) {
    return absl::InvalidArgumentError(
        "pool_connections, insert_threads and max_ops_per_commit must be at least 1");
  }
  auto store = absl::WrapUnique(new PgTaskStore(options));
  {
    VT_ASSIGN_OR_RETURN(Connection admin, store->Connect());
    VT_RETURN_IF_ERROR(pg::Migrate(admin));
  }
  for (int i = 0; i < options.pool_connections; ++i) {
    VT_ASSIGN_OR_RETURN(Connection conn, store->Connect());
    store->pool_.push_back(std::make_unique<Connection>(std::move(conn)));
  }
  {
    absl::MutexLock lock(&store->pool_mu_);
    for (auto& conn : store->pool_) store->free_conns_.push_back(conn.get());
  }
  for (int i = 0; i < options.insert_threads; ++i) {
    VT_ASSIGN_OR_RETURN(Connection conn, store->Connect());
    store->inserter_conns_.push_back(std::make_unique<Connection>(std::move(conn)));
  }
  if (options.listen) {
    VT_ASSIGN_OR_RETURN(Connection conn, Connection::Open(options.conninfo));
    VT_RETURN_IF_ERROR(conn.Run("LISTEN videotask_tasks"));
    store->listen_conn_ = std::make_unique<Connection>(std::move(conn));
    if (::pipe2(store->wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
      return absl::InternalError(absl::StrCat("pipe: errno ", errno));
    }
    store->listener_thread_ = std::thread(&PgTaskStore::ListenerLoop, store.get());
  }
  {
    absl::MutexLock lock(&store->queue_mu_);
    store->inserters_running_ = options.insert_threads;
  }
  for (auto& conn : store->inserter_conns_) {
    store->inserters_.emplace_back(&PgTaskStore::InserterLoop, store.get(), conn.get());
  }
  Connection& any = *store->pool_.front();
  VT_LOG_INFO("task store: PostgreSQL database {} on {}:{} (schema v{}), {} connections",
              PQdb(any.raw()), PQhost(any.raw()), PQport(any.raw()), pg::LatestSchemaVersion(),
              options.pool_connections + options.insert_threads + (options.listen ? 1 : 0));
  return store;
}

PgTaskStore::~PgTaskStore() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  for (std::thread& t : inserters_) t.join();
  {
    // Without inserter threads (a failed Open), fail whatever is queued.
    absl::MutexLock lock(&queue_mu_);
    inserters_running_ = 0;
  }
  listener_stop_.store(true);
  if (wake_pipe_[1] >= 0) {
    char c = 1;
    (void)!::write(wake_pipe_[1], &c, 1);
  }
  if (listener_thread_.joinable()) listener_thread_.join();
  for (int fd : wake_pipe_) {
    if (fd >= 0) ::close(fd);
  }
}

PgStoreStats PgTaskStore::stats() const {
  PgStoreStats s;
  s.commits = commits_.load();
  s.ops = ops_.load();
  s.notifications = notifications_.load();
  return s;
}

// ---------------------------------------------------------------- inserts

void PgTaskStore::InsertAsync(std::vector<NewTask> tasks,
                              std::function<void(InsertResults)> done) {
  if (tasks.empty()) {
    done(InsertResults());
    return;
  }
  auto op = std::make_unique<InsertOp>(std::move(tasks), std::move(done));
  for (size_t i = 0; i < op->tasks.size(); ++i) {
    const Task& t = op->tasks[i].task;
    if (!t.image_sha256.empty() && !IsHexDigest(t.image_sha256)) {
      op->precheck[i] = absl::InvalidArgumentError(
          absl::StrCat("task ", t.id, ": image_sha256 is not a lower-case hex digest"));
    }
  }
  {
    absl::MutexLock lock(&queue_mu_);
    if (inserters_running_ > 0) {
      queue_.push_back(std::move(op));
      return;
    }
  }
  for (auto& r : op->results) r = absl::UnavailableError("task store is shut down");
  op->tasks.clear();
  op->done(std::move(op->results));
}

void PgTaskStore::InserterLoop(Connection* conn) {
  const size_t max_ops = static_cast<size_t>(options_.max_ops_per_commit);
  while (true) {
    std::vector<std::unique_ptr<InsertOp>> batch;
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.Await(absl::Condition(
          +[](PgTaskStore* s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return !s->queue_.empty() || s->stopping_;
          },
          this));
      if (queue_.empty()) {
        --inserters_running_;  // the last one out: InsertAsync fails from now on
        return;
      }
      size_t n = std::min(max_ops, queue_.size());
      for (size_t i = 0; i < n; ++i) batch.push_back(std::move(queue_[i]));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    }
    ProcessInserts(*conn, batch);
  }
}

void PgTaskStore::ProcessInserts(Connection& conn, std::vector<std::unique_ptr<InsertOp>>& ops) {
  absl::Status tx_status;
  for (int attempt = 0; attempt < kMaxTxAttempts; ++attempt) {
    if (!conn.ok() && conn.Reset()) {
      (void)conn.Exec("SELECT set_config('videotask.origin', $1, false)", Params().Text(origin_));
    }
    tx_status = conn.Run("BEGIN");
    if (!tx_status.ok()) continue;
    StubHints hints;
    bool retry = false;
    for (auto& op : ops) {
      for (size_t i = 0; i < op->tasks.size() && !retry; ++i) {
        if (!op->precheck[i].ok()) {
          op->results[i] = op->precheck[i];
          continue;
        }
        const StubHints hints_before = hints;  // a failed unit takes no stub
        absl::Status sp = conn.Run("SAVEPOINT op");
        absl::StatusOr<InsertResult> r =
            sp.ok() ? InsertOne(conn, op->tasks[i], hints) : absl::StatusOr<InsertResult>(sp);
        for (int again = 0; again < 3 && !r.ok() && IsRacedInsert(r.status()); ++again) {
          // Another transaction stored the same request_id (or stub) first
          // and has committed: the next try sees it.
          absl::Status undo = conn.Run("ROLLBACK TO SAVEPOINT op");
          hints = hints_before;
          r = undo.ok() ? InsertOne(conn, op->tasks[i], hints) : absl::StatusOr<InsertResult>(undo);
        }
        if (!r.ok()) hints = hints_before;
        if (r.ok()) {
          sp = conn.Run("RELEASE SAVEPOINT op");
          if (!sp.ok()) r = sp;
        }
        if (!r.ok()) {
          if (pg::IsRetryableTxError(r.status()) || !conn.ok()) {
            retry = true;
            tx_status = r.status();
            break;
          }
          absl::Status undo = conn.Run("ROLLBACK TO SAVEPOINT op");
          if (!undo.ok()) {
            retry = true;
            tx_status = undo;
            break;
          }
        }
        op->results[i] = std::move(r);
      }
      if (retry) break;
    }
    if (!retry) {
      tx_status = conn.Run("COMMIT");
      if (tx_status.ok()) {
        commits_.fetch_add(1);
        RaiseStubHints(conn, hints);
        break;
      }
    } else {
      (void)conn.Run("ROLLBACK");
    }
    if (!pg::IsRetryableTxError(tx_status) && conn.ok()) break;
  }
  for (auto& op : ops) {
    if (!tx_status.ok()) {
      absl::Status failed = WithContext(tx_status, "insert transaction failed");
      for (auto& r : op->results) r = failed;
    }
    op->tasks.clear();  // frees image bytes before the callback runs
    ops_.fetch_add(1);
    op->done(std::move(op->results));
  }
}

absl::StatusOr<std::string> PgTaskStore::AllocateStub(Connection& conn, const std::string& base,
                                                     StubHints& hints) {
  int64_t n = 0;  // 0: try the base itself
  auto hint = hints.find(base);
  if (hint != hints.end()) {
    n = hint->second;
  } else {
    VT_ASSIGN_OR_RETURN(Result counter, conn.Exec(kStubHintSql, Params().Text(base)));
    if (counter.rows() > 0) n = counter.Int(0, 0);
  }
  std::string candidate;
  while (true) {
    candidate = n < 2 ? base : absl::StrCat(base, "_", n);
    VT_ASSIGN_OR_RETURN(Result free, conn.Exec(kTryStubSql, Params().Text(candidate)));
    if (free.rows() > 0 && free.Text(0, 0) == "t") break;
    n = n < 2 ? 2 : n + 1;
  }
  hints[base] = n < 2 ? 2 : n + 1;
  return candidate;
}

void PgTaskStore::RaiseStubHints(Connection& conn, const StubHints& hints) {
  if (hints.empty()) return;
  std::vector<std::string> bases, nexts;
  for (const auto& [base, next] : hints) {
    bases.push_back(base);
    nexts.push_back(absl::StrCat(next));
  }
  absl::Status status =
      conn.Exec(kRaiseStubHintsSql, Params().Text(TextArray(bases)).Text(TextArray(nexts)))
          .status();
  if (!status.ok()) VT_LOG_WARN("task store: stub counters not raised: {}", status.ToString());
}

absl::StatusOr<InsertResult> PgTaskStore::InsertOne(Connection& conn, NewTask& item,
                                                     StubHints& hints) {
  Task task = item.task;
  if (task.id.empty()) return absl::InvalidArgumentError("task id is empty");
  if (task.target_filename_stub.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("task ", task.id, ": target_filename_stub is empty"));
  }
  if (!task.request_id.empty()) {
    VT_ASSIGN_OR_RETURN(Result found,
                        conn.Exec(SelectByRequestIdSql(), Params().Text(task.request_id)));
    if (found.rows() > 0) {
      VT_ASSIGN_OR_RETURN(Task other, ReadTask(found, 0));
      if (other.spec_fingerprint != task.spec_fingerprint) {
        return absl::AlreadyExistsError(absl::StrCat("request_id \"", task.request_id,
                                                     "\" was already used by task ", other.id,
                                                     " with a different spec"));
      }
      InsertResult result;
      result.task = std::move(other);
      result.created = false;
      return result;
    }
  }

  const std::string& sha = task.image_sha256;
  if (!sha.empty() && !item.image_bytes.empty()) {
    VT_RETURN_IF_ERROR(WithContext(
        conn.Exec(kUpsertBlobSql, Params().Text(sha).Bytes(item.image_bytes)).status(),
        absl::StrCat("store image of task ", task.id)));
  }

  if (task.create_time == absl::InfinitePast()) task.create_time = clock_.Now();
  if (task.update_time == absl::InfinitePast()) task.update_time = task.create_time;
  task.version = 1;
  VT_ASSIGN_OR_RETURN(task.target_filename_stub,
                      AllocateStub(conn, task.target_filename_stub, hints));
  // A unique violation here (another replica stored the same request_id
  // meanwhile) is retried by ProcessInserts from the op's savepoint.
  VT_RETURN_IF_ERROR(WithContext(conn.Exec(InsertTaskSql(), TaskParams(task)).status(),
                                 absl::StrCat("insert task ", task.id)));
  if (!task.spec.labels.empty()) {
    std::vector<std::string> keys, values;
    for (const auto& [key, value] : task.spec.labels) {
      keys.push_back(key);
      values.push_back(value);
    }
    VT_RETURN_IF_ERROR(conn.Exec(kInsertLabelsSql, Params()
                                                       .Text(task.id)
                                                       .Text(TextArray(keys))
                                                       .Text(TextArray(values)))
                           .status());
  }
  if (IsTerminal(task.state) && !sha.empty()) VT_RETURN_IF_ERROR(DeleteBlobIfUnused(conn, sha));
  InsertResult result;
  result.task = std::move(task);
  result.created = true;
  return result;
}

// Locks the blob row first, then looks for live users with a new snapshot:
// an insert that upserted the row before us is committed and seen; one
// after us waits on the lock and stores the bytes again.
absl::Status PgTaskStore::DeleteBlobIfUnused(Connection& conn, const std::string& sha) {
  VT_ASSIGN_OR_RETURN(Result locked, conn.Exec(kLockBlobSql, Params().Text(sha)));
  if (locked.rows() == 0) return absl::OkStatus();
  VT_ASSIGN_OR_RETURN(Result used, conn.Exec(kImageInUseSql, Params().Text(sha)));
  if (used.rows() > 0) return absl::OkStatus();
  return conn.Exec(kDeleteBlobSql, Params().Text(sha)).status();
}

// ------------------------------------------------------- update / claims

absl::StatusOr<Task> PgTaskStore::UpdateOne(Connection& conn, const Task& task) {
  Params p;
  p.Text(task.id)
      .Int(task.version)
      .Int(static_cast<int>(task.state))
      .Text(task.provider_task_id)
      .Text(task.provider_status)
      .Double(task.progress)
      .Text(task.output_path)
      .Int(task.output_size_bytes)
      .Text(task.output_sha256)
      .Text(task.error.code)
      .Text(task.error.message)
      .Int(task.error.retryable ? 1 : 0)
      .Text(task.error.provider_code)
      .Int(task.attempt_count);
  AddTime(p, task.update_time);
  AddTime(p, task.start_time);
  AddTime(p, task.end_time);
  AddTime(p, task.next_attempt_time);
  p.Text(task.lease_owner);
  AddTime(p, task.lease_expiry);
  p.Int(task.provider_cancel_pending ? 1 : 0).OptionalText(UrlsToJson(task.output_urls));
  VT_ASSIGN_OR_RETURN(Result updated, conn.Exec(UpdateTaskSql(), p));
  if (updated.rows() > 0) {
    VT_ASSIGN_OR_RETURN(Task stored, ReadTask(updated, 0));
    if (IsTerminal(stored.state) && !stored.image_sha256.empty()) {
      VT_RETURN_IF_ERROR(DeleteBlobIfUnused(conn, stored.image_sha256));
    }
    return stored;
  }
  VT_ASSIGN_OR_RETURN(Result version, conn.Exec(kVersionOfSql, Params().Text(task.id)));
  if (version.rows() == 0) return absl::NotFoundError(absl::StrCat("task ", task.id, " not found"));
  return absl::AbortedError(absl::StrCat("task ", task.id, " changed meanwhile (stored version ",
                                         version.Int(0, 0), ", given ", task.version, ")"));
}

absl::StatusOr<Task> PgTaskStore::Update(const Task& task) {
  absl::StatusOr<Task> result = absl::InternalError("update not run");
  ConnLease lease = AcquireConn();
  absl::Status status = InTransaction(lease.conn(), [&](Connection& conn) -> absl::Status {
    result = UpdateOne(conn, task);
    // A lost compare-and-set is an answer, not a failed transaction.
    if (absl::IsAborted(result.status()) && !pg::IsRetryableTxError(result.status())) {
      return absl::OkStatus();
    }
    return result.status();
  });
  if (!status.ok()) return status;
  return result;
}

absl::StatusOr<std::vector<Task>> PgTaskStore::ClaimBatch(Connection& conn,
                                                          const std::string& backend, int limit,
                                                          absl::Time now,
                                                          const std::string& owner,
                                                          absl::Time lease_expiry) {
  std::optional<Limits> limits;
  {
    absl::MutexLock lock(&limits_mu_);
    auto it = limits_.find(backend);
    if (it != limits_.end()) limits = it->second;
  }
  const int64_t now_us = CompareMicros(now);
  if (limits.has_value()) {
    // Serializes claims of this backend across replicas until commit.
    VT_RETURN_IF_ERROR(conn.Exec(kEnsureLimitsSql,
                                 Params()
                                     .Text(backend)
                                     .Int(limits->max_concurrency)
                                     .Int(absl::ToInt64Microseconds(limits->min_interval)))
                           .status());
    VT_ASSIGN_OR_RETURN(Result row, conn.Exec(kLockLimitsSql, Params().Text(backend)));
    int64_t next_free_at = row.rows() > 0 ? row.Int(0, 0) : 0;
    VT_ASSIGN_OR_RETURN(Result active, conn.Exec(kCountActiveSql, Params().Text(backend)));
    int64_t free = limits->max_concurrency - active.Int(0, 0);
    limit = static_cast<int>(std::min<int64_t>(limit, std::max<int64_t>(free, 0)));
    if (limits->min_interval > absl::ZeroDuration()) {
      if (next_free_at > now_us) limit = 0;
      limit = std::min(limit, 1);
    }
    if (limit <= 0) return std::vector<Task>();
  }
  Params p;
  p.Text(backend).Text(owner);
  AddTime(p, lease_expiry);
  p.Int(now_us).Int(limit);
  VT_ASSIGN_OR_RETURN(Result claimed, conn.Exec(ClaimSql(), p));
  VT_ASSIGN_OR_RETURN(std::vector<Task> tasks, ReadTasks(claimed));
  std::sort(tasks.begin(), tasks.end(), [](const Task& a, const Task& b) {
    if (a.spec.priority != b.spec.priority) return a.spec.priority > b.spec.priority;
    if (a.create_time != b.create_time) return a.create_time < b.create_time;
    return a.id < b.id;
  });
  if (limits.has_value() && limits->min_interval > absl::ZeroDuration() && !tasks.empty()) {
    VT_RETURN_IF_ERROR(
        conn.Exec(kSetNextFreeSql,
                  Params().Text(backend).Int(CompareMicros(now + limits->min_interval)))
            .status());
  }
  return tasks;
}

absl::StatusOr<std::vector<Task>> PgTaskStore::ClaimQueued(absl::string_view backend, int limit,
                                                           absl::Time now, absl::string_view owner,
                                                           absl::Time lease_expiry) {
  if (owner.empty()) return absl::InvalidArgumentError("lease owner is empty");
  if (limit <= 0) return std::vector<Task>();
  std::vector<Task> result;
  const std::string backend_copy(backend);
  const std::string owner_copy(owner);
  ConnLease lease = AcquireConn();
  VT_RETURN_IF_ERROR(InTransaction(lease.conn(), [&](Connection& conn) -> absl::Status {
    VT_ASSIGN_OR_RETURN(result, ClaimBatch(conn, backend_copy, limit, now, owner_copy,
                                           lease_expiry));
    return absl::OkStatus();
  }));
  return result;
}

absl::Status PgTaskStore::RenewLeases(absl::string_view owner, absl::Time lease_expiry) {
  if (owner.empty()) return absl::InvalidArgumentError("lease owner is empty");
  Params p;
  p.Text(owner);
  AddTime(p, lease_expiry);
  ConnLease lease = AcquireConn();
  return lease.conn().Exec(kRenewSql, p).status();
}

void PgTaskStore::SetBackendLimits(absl::string_view backend, int max_concurrency,
                                   absl::Duration min_submit_interval) {
  {
    absl::MutexLock lock(&limits_mu_);
    limits_[std::string(backend)] = Limits{max_concurrency, min_submit_interval};
  }
  ConnLease lease = AcquireConn();
  absl::Status status =
      lease.conn()
          .Exec(kUpsertLimitsSql, Params()
                                      .Text(backend)
                                      .Int(max_concurrency)
                                      .Int(absl::ToInt64Microseconds(min_submit_interval)))
          .status();
  if (!status.ok()) {
    VT_LOG_WARN("task store: recording the limits of backend {} failed: {}", backend,
                status.ToString());
  }
}

// ----------------------------------------------------------------- reads

absl::StatusOr<Task> PgTaskStore::Get(absl::string_view id) {
  ConnLease lease = AcquireConn();
  VT_ASSIGN_OR_RETURN(Result r, lease.conn().Exec(SelectByIdSql(), Params().Text(id)));
  if (r.rows() == 0) return absl::NotFoundError(absl::StrCat("task ", id, " not found"));
  return ReadTask(r, 0);
}

absl::StatusOr<ListPage> PgTaskStore::List(const ListQuery& query) {
  const int page_size = std::clamp(query.page_size, 1, 1000);
  std::vector<std::string> states;
  for (TaskState state : query.states) states.push_back(absl::StrCat(static_cast<int>(state)));
  std::sort(states.begin(), states.end());
  states.erase(std::unique(states.begin(), states.end()), states.end());

  Params p;
  p.Int(page_size + 1);
  int next = 2;
  std::string sql = absl::StrCat("SELECT ", Columns(), " FROM tasks WHERE TRUE");
  if (query.after.has_value()) {
    absl::StrAppend(&sql, " AND (create_time, id) < ($", next, "::bigint, $", next + 1,
                    "::text COLLATE \"C\")");
    p.Int(CompareMicros(query.after->create_time)).Text(query.after->id);
    next += 2;
  }
  if (!query.backend.empty()) {
    absl::StrAppend(&sql, " AND backend = $", next++);
    p.Text(query.backend);
  }
  for (const auto& [key, value] : query.labels) {
    absl::StrAppend(&sql,
                    " AND EXISTS (SELECT 1 FROM task_labels l WHERE l.task_id = tasks.id"
                    " AND l.key = $",
                    next, " AND l.value = $", next + 1, ")");
    p.Text(key).Text(value);
    next += 2;
  }
  if (!states.empty()) {
    absl::StrAppend(&sql, " AND state = ANY($", next++, "::int[])");
    p.Text(absl::StrCat("{", absl::StrJoin(states, ","), "}"));
  }
  absl::StrAppend(&sql, " ORDER BY create_time DESC, id DESC LIMIT $1");

  ConnLease lease = AcquireConn();
  VT_ASSIGN_OR_RETURN(Result r, lease.conn().Exec(sql, p));
  ListPage page;
  int n = std::min(r.rows(), page_size);
  page.has_more = r.rows() > page_size;
  page.tasks.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    VT_ASSIGN_OR_RETURN(Task t, ReadTask(r, i));
    page.tasks.push_back(std::move(t));
  }
  return page;
}

absl::StatusOr<std::vector<Task>> PgTaskStore::ListRecoverable(absl::string_view owner,
                                                               absl::Time now) {
  ConnLease lease = AcquireConn();
  VT_ASSIGN_OR_RETURN(Result r, lease.conn().Exec(ListRecoverableSql(),
                                                  Params().Text(owner).Int(CompareMicros(now))));
  return ReadTasks(r);
}

absl::StatusOr<absl::Time> PgTaskStore::NextQueuedTime(absl::string_view backend) {
  ConnLease lease = AcquireConn();
  VT_ASSIGN_OR_RETURN(Result r, lease.conn().Exec(kNextQueuedSql, Params().Text(backend)));
  if (r.rows() == 0) return absl::InfiniteFuture();
  return ColumnTime(r, 0, 0);
}

absl::StatusOr<int64_t> PgTaskStore::CountQueued() {
  ConnLease lease = AcquireConn();
  VT_ASSIGN_OR_RETURN(Result r, lease.conn().Exec(kCountQueuedSql));
  return r.Int(0, 0);
}

absl::StatusOr<std::string> PgTaskStore::ReadImage(absl::string_view sha256) {
  if (!IsHexDigest(sha256)) {
    return absl::InvalidArgumentError("image digest must be 64 lower-case hex characters");
  }
  ConnLease lease = AcquireConn();
  VT_ASSIGN_OR_RETURN(Result r, lease.conn().Exec(kReadBlobSql, Params().Text(sha256),
                                                  /*binary_result=*/true));
  if (r.rows() == 0) return absl::NotFoundError(absl::StrCat("image ", sha256, " is not stored"));
  return r.Text(0, 0);
}

// ------------------------------------------------------------ change feed

void PgTaskStore::SetChangeListener(std::function<void(const Task&)> listener) {
  absl::MutexLock lock(&listener_mu_);
  listener_ = std::move(listener);
}

void PgTaskStore::Deliver(const std::vector<std::string>& ids) {
  absl::StatusOr<std::vector<Task>> tasks = [&]() -> absl::StatusOr<std::vector<Task>> {
    ConnLease lease = AcquireConn();
    VT_ASSIGN_OR_RETURN(Result r, lease.conn().Exec(SelectByIdsSql(), Params().Text(TextArray(ids))));
    return ReadTasks(r);
  }();
  if (!tasks.ok()) {
    VT_LOG_WARN("task store: reading changed tasks failed: {}", tasks.status().ToString());
    return;
  }
  // Held while calling: SetChangeListener(nullptr) waits for a delivery in
  // progress, so the listener's owner may go away right after.
  absl::MutexLock lock(&listener_mu_);
  if (!listener_) return;
  for (const Task& t : *tasks) {
    notifications_.fetch_add(1);
    listener_(t);
  }
}

void PgTaskStore::ListenerLoop() {
  bool connected = true;
  absl::Duration backoff = absl::Milliseconds(100);
  while (!listener_stop_.load()) {
    if (!connected) {
      // Wait (interruptibly), then reconnect and listen again.
      pollfd wake{wake_pipe_[0], POLLIN, 0};
      ::poll(&wake, 1, static_cast<int>(absl::ToInt64Milliseconds(backoff)));
      if (listener_stop_.load()) break;
      backoff = std::min(backoff * 2, absl::Seconds(5));
      absl::StatusOr<Connection> conn = Connection::Open(options_.conninfo);
      if (!conn.ok() || !conn->Run("LISTEN videotask_tasks").ok()) continue;
      *listen_conn_ = *std::move(conn);
      connected = true;
      backoff = absl::Milliseconds(100);
      VT_LOG_WARN("task store: change feed reconnected; changes made meanwhile by other "
                  "replicas reach watchers only with their next change");
    }
    PGconn* raw = listen_conn_->raw();
    pollfd fds[2] = {{PQsocket(raw), POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    int n = ::poll(fds, 2, 1000);
    if (n < 0 && errno != EINTR) break;
    if (listener_stop_.load()) break;
    if (n <= 0 || (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) == 0) continue;
    if (PQconsumeInput(raw) == 0 || PQstatus(raw) != CONNECTION_OK) {
      VT_LOG_WARN("task store: change feed connection lost: {}", PQerrorMessage(raw));
      connected = false;
      continue;
    }
    std::vector<std::string> ids;
    absl::flat_hash_set<std::string> seen;
    while (PGnotify* note = PQnotifies(raw)) {
      absl::string_view payload(note->extra != nullptr ? note->extra : "");
      if (note->relname != nullptr && absl::string_view(note->relname) == kChannel) {
        size_t space = payload.find(' ');
        if (space != absl::string_view::npos && payload.substr(0, space) != origin_) {
          std::string id(payload.substr(space + 1));
          if (seen.insert(id).second) ids.push_back(std::move(id));
        }
      }
      PQfreemem(note);
    }
    if (!ids.empty()) Deliver(ids);
  }
}

}  // namespace videotask::store
