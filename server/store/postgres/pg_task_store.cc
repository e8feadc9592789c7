#include "server/store/postgres/pg_task_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/memory/memory.h"
#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "server/store/postgres/pg_migrations.h"
#include "server/store/postgres/pg_session.h"
#include "server/store/state_counts.h"
#include "server/store/store_util.h"

namespace videotask::store {

using pg::Connection;
using pg::Params;
using pg::PgSession;

std::string NewStoreOrigin(absl::BitGenRef rng) {
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(rng), absl::Uniform<uint64_t>(rng));
}

// ------------------------------------------------------------------- pool

void PgTaskStore::TagSession(Connection& conn) {
  absl::Status tagged =
      conn.Exec("SELECT set_config('videotask.origin', $1, false)", Params().Text(origin_))
          .status();
  if (!tagged.ok()) VT_LOG_WARN("task store: {}", tagged.ToString());
}

PgTaskStore::ConnLease PgTaskStore::AcquireConn() {
  ConnLease lease = pool_.Acquire();
  Connection& conn = lease.get();
  // A new session: tag it again for the change feed.
  if (!conn.ok() && conn.Reset()) TagSession(conn);
  return lease;
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
    : TableStore(internal::Dialect::Postgres()),
      options_(options),
      clock_(internal::ClockOrSystem(options.clock)),
      origin_(options.origin) {}

absl::StatusOr<std::unique_ptr<PgTaskStore>> PgTaskStore::Open(const PgStoreOptions& options) {
  if (options.conninfo.empty()) return absl::InvalidArgumentError("PostgreSQL conninfo is empty");
  if (options.origin.empty()) return absl::InvalidArgumentError("store origin is empty");
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
    store->pool_.Add(std::make_unique<Connection>(std::move(conn)));
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
  store->queue_.Start(options.insert_threads);
  for (auto& conn : store->inserter_conns_) {
    store->inserters_.emplace_back(&PgTaskStore::InserterLoop, store.get(), conn.get());
  }
  PGconn* any = store->pool_.any()->raw();
  VT_LOG_INFO("task store: PostgreSQL database {} on {}:{} (schema v{}), {} connections", PQdb(any),
              PQhost(any), PQport(any), pg::LatestSchemaVersion(),
              options.pool_connections + options.insert_threads + (options.listen ? 1 : 0));
  return store;
}

PgTaskStore::~PgTaskStore() {
  queue_.Stop();
  for (std::thread& t : inserters_) t.join();
  // Without inserter threads (a failed Open), fail whatever is queued.
  queue_.Close();
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

// ----------------------------------------------------------------- writes

absl::StatusOr<Task> PgTaskStore::UpdateOne(Connection& conn, const Task& task) {
  PgSession session(conn);
  VT_ASSIGN_OR_RETURN(Task stored, table_.Update(session, task));
  if (internal::MayReleaseImage(stored)) {
    VT_RETURN_IF_ERROR(DeleteBlobIfUnused(conn, stored.image_sha256));
  }
  return stored;
}

absl::StatusOr<Task> PgTaskStore::Update(const Task& task) {
  absl::StatusOr<Task> result = absl::InternalError("update not run");
  ConnLease lease = AcquireConn();
  absl::Status status = InTransaction(lease.get(), [&](Connection& conn) -> absl::Status {
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

absl::StatusOr<std::vector<Task>> PgTaskStore::DeleteEnded(absl::Time ended_before, int limit) {
  std::vector<Task> deleted;
  ConnLease lease = AcquireConn();
  VT_RETURN_IF_ERROR(InTransaction(lease.get(), [&](Connection& conn) -> absl::Status {
    PgSession session(conn);
    VT_ASSIGN_OR_RETURN(deleted, table_.DeleteEnded(session, ended_before, limit));
    for (const Task& task : deleted) {
      if (internal::IsHexDigest(task.image_sha256)) {
        VT_RETURN_IF_ERROR(DeleteBlobIfUnused(conn, task.image_sha256));
      }
    }
    return absl::OkStatus();
  }));
  return deleted;
}

absl::StatusOr<Task> PgTaskStore::Delete(absl::string_view id) {
  absl::StatusOr<Task> result = absl::InternalError("delete not run");
  ConnLease lease = AcquireConn();
  VT_RETURN_IF_ERROR(InTransaction(lease.get(), [&](Connection& conn) -> absl::Status {
    PgSession session(conn);
    result = table_.Delete(session, id);
    if (!result.ok()) {
      // NOT_FOUND and FAILED_PRECONDITION are answers, not failed
      // transactions.
      return pg::IsRetryableTxError(result.status()) ? result.status() : absl::OkStatus();
    }
    if (internal::IsHexDigest(result->image_sha256)) {
      VT_RETURN_IF_ERROR(DeleteBlobIfUnused(conn, result->image_sha256));
    }
    return absl::OkStatus();
  }));
  return result;
}

absl::StatusOr<std::vector<StateCount>> PgTaskStore::CountByState() {
  ConnLease lease = AcquireConn();
  std::vector<StateCount> counts;
  VT_RETURN_IF_ERROR(InTransaction(lease.get(), [&](Connection& conn) -> absl::Status {
    PgSession session(conn);
    VT_RETURN_IF_ERROR(internal::FoldStateDeltas(session, internal::Dialect::Postgres()));
    VT_ASSIGN_OR_RETURN(counts, internal::ReadStateCounts(session, internal::Dialect::Postgres()));
    return absl::OkStatus();
  }));
  return counts;
}

absl::Status PgTaskStore::RenewLeases(absl::string_view owner, absl::Time lease_expiry) {
  if (owner.empty()) return absl::InvalidArgumentError("lease owner is empty");
  ConnLease lease = AcquireConn();
  PgSession session(lease.get());
  return table_.RenewLeases(session, owner, lease_expiry);
}

// ----------------------------------------------------------------- reads

absl::Status PgTaskStore::WithReadSession(
    absl::FunctionRef<absl::Status(internal::SqlSession&)> fn) {
  ConnLease lease = AcquireConn();
  PgSession session(lease.get());
  return fn(session);
}

absl::Status PgTaskStore::WithWriteSession(
    std::function<absl::Status(internal::SqlSession&)> fn) {
  ConnLease lease = AcquireConn();
  return InTransaction(lease.get(), [&](Connection& conn) {
    PgSession session(conn);
    return fn(session);
  });
}

absl::StatusOr<std::string> PgTaskStore::ReadImage(absl::string_view sha256) {
  VT_RETURN_IF_ERROR(internal::CheckReadDigest(sha256));
  ConnLease lease = AcquireConn();
  // bytea comes back in binary format: the raw image bytes.
  PgSession session(lease.get(), /*binary_result=*/true);
  std::optional<std::string> data;
  VT_RETURN_IF_ERROR(session.Query(
      table_.sql().read_blob, [&](internal::RowWriter& w) { w.Text(sha256); },
      [&](const internal::RowReader& row) {
        data = row.Text(0);
        return absl::OkStatus();
      }));
  if (!data.has_value()) {
    return absl::NotFoundError(absl::StrCat("image ", sha256, " is not stored"));
  }
  return *std::move(data);
}

}  // namespace videotask::store
