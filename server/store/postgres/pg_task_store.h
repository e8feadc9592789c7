// The shared TaskStore: one PostgreSQL database used by several videotaskd
// replicas at once.
//
// - Writes: InsertAsync goes to a few inserter threads, each with its own
//   connection, that group-commit whatever is queued (one transaction, a
//   savepoint per task). Update, ClaimQueued and RenewLeases run on the
//   caller's thread with a pooled connection, one transaction each. A
//   transaction that hits a deadlock or serialization failure is retried
//   whole.
// - Claims: `SELECT ... FOR UPDATE SKIP LOCKED` inside one UPDATE, so two
//   replicas never take the same task. With limits set (SetBackendLimits)
//   the claim first locks the backend's row of `backend_limits`, counts
//   the backend's SUBMITTING/RUNNING/DOWNLOADING tasks of every replica and
//   honours the shared next_free_at (minimum interval between creations).
// - Change feed: a trigger NOTIFYs every versioned change; a listener
//   thread (LISTEN on its own connection) fetches the tasks changed by
//   other stores and hands them to the SetChangeListener callback.
// - Images: the `blobs` table (bytea), readable by every replica.
// - Open never touches leases: other replicas may hold them.
//
// Thread-safe. Unlike SqliteTaskStore, blocking writes may be called from
// an InsertAsync `done` callback.
#ifndef VIDEOTASK_SERVER_STORE_POSTGRES_PG_TASK_STORE_H_
#define VIDEOTASK_SERVER_STORE_POSTGRES_PG_TASK_STORE_H_

#include <map>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/random/bit_gen_ref.h"
#include "absl/synchronization/mutex.h"
#include "server/store/batch_queue.h"
#include "server/store/postgres/pg.h"
#include "server/store/resource_pool.h"
#include "server/store/table_store.h"

namespace videotask::store {

// A random change-feed origin for PgStoreOptions (two 64-bit draws, hex),
// made by the caller that owns the randomness.
std::string NewStoreOrigin(absl::BitGenRef rng);

struct PgStoreOptions {
  // libpq connection string: "postgresql://user@host:port/db?..." or
  // "host=... dbname=...". Never logged (it may hold a password).
  std::string conninfo;
  // Connections for reads and for Update/ClaimQueued/RenewLeases.
  int pool_connections = 8;
  // Threads (each with a connection) that group-commit inserts.
  int insert_threads = 4;
  // Most InsertAsync calls grouped into one transaction.
  int max_ops_per_commit = 256;
  // Run the LISTEN thread (the change feed). Off only in tests.
  bool listen = true;
  // This store's tag on the change feed: unique among the stores sharing
  // the database (NewStoreOrigin). Required.
  std::string origin;
  // Borrowed; null = the system clock. Stamps create_time and update_time
  // of inserted tasks that have none.
  const Clock* clock = nullptr;
  // Told of every group commit of inserts (metrics). Borrowed; null = none.
  StoreObserver* observer = nullptr;
};


struct PgStoreStats {
  int64_t commits = 0;        // insert transactions committed
  int64_t ops = 0;            // InsertAsync calls completed
  int64_t notifications = 0;  // changes of other stores delivered to the listener
};

class PgTaskStore final : public internal::TableStore {
 public:
  // Connects, migrates the schema and starts the threads.
  static absl::StatusOr<std::unique_ptr<PgTaskStore>> Open(const PgStoreOptions& options);
  // Completes every queued insert, stops the threads, closes connections.
  ~PgTaskStore() override;

  // TaskStore (reads: TableStore); the same contract and notes as
  // SqliteTaskStore.
  void InsertAsync(std::vector<NewTask> tasks, std::function<void(InsertResults)> done) override;
  absl::StatusOr<std::string> ReadImage(absl::string_view sha256) override;
  absl::StatusOr<Task> Update(const Task& task) override;
  // Replicas may run it at once: the rows are taken FOR UPDATE SKIP LOCKED.
  absl::StatusOr<std::vector<Task>> DeleteEnded(absl::Time ended_before, int limit) override;
  absl::StatusOr<Task> Delete(absl::string_view id) override;
  // Folds the other processes' pending deltas first (state_counts.h).
  absl::StatusOr<std::vector<StateCount>> CountByState() override;
  absl::Status RenewLeases(absl::string_view owner, absl::Time lease_expiry) override;
  absl::StatusOr<std::vector<Task>> ClaimQueued(absl::string_view backend, int limit,
                                                absl::Time now, absl::string_view owner,
                                                absl::Time lease_expiry) override;
  void SetBackendLimits(absl::string_view backend, int max_concurrency,
                        absl::Duration min_submit_interval) override
      ABSL_LOCKS_EXCLUDED(limits_mu_);
  // Replacing the listener (or clearing it with nullptr) waits for a
  // delivery in progress: the old listener is not called after it returns.
  void SetChangeListener(std::function<void(const Task&)> listener) override
      ABSL_LOCKS_EXCLUDED(listener_mu_);

  PgStoreStats stats() const;
  // This store's tag on the change feed (unique per Open).
  const std::string& origin() const { return origin_; }

  PgTaskStore(const PgTaskStore&) = delete;
  PgTaskStore& operator=(const PgTaskStore&) = delete;

 protected:
  absl::Status WithReadSession(absl::FunctionRef<absl::Status(internal::SqlSession&)> fn) override;
  absl::Status WithWriteSession(std::function<absl::Status(internal::SqlSession&)> fn) override;

 private:
  // One InsertAsync call, queued for the inserter threads.
  struct InsertOp {
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
  class InsertHooks;  // the store core's hooks for an insert
  struct Limits {
    int max_concurrency = 0;
    absl::Duration min_interval;
  };
  using ConnLease = internal::ResourcePool<pg::Connection>::Lease;
  // Attempts of a transaction that hits a deadlock or serialization failure.
  static constexpr int kMaxTxAttempts = 5;

  explicit PgTaskStore(const PgStoreOptions& options);

  absl::StatusOr<pg::Connection> Connect();
  // A pooled connection, reconnected (and tagged again) when it broke.
  ConnLease AcquireConn();
  // Tags a new session with origin_ for the change feed.
  void TagSession(pg::Connection& conn);
  // Runs `fn` in BEGIN ... COMMIT, retried whole on a deadlock or
  // serialization failure.
  absl::Status InTransaction(pg::Connection& conn,
                             const std::function<absl::Status(pg::Connection&)>& fn);

  void InserterLoop(pg::Connection* conn);
  void ProcessInserts(pg::Connection& conn, std::vector<std::unique_ptr<InsertOp>>& ops);
  // Next stub suffix per base, raised in the database after commit.
  using StubHints = std::map<std::string, int64_t>;
  // The body of one insert transaction over `ops`, after BEGIN: OK once
  // committed; otherwise the error that ended it (the ops' results are
  // then not final).
  absl::Status TryInsertTransaction(pg::Connection& conn,
                                    std::vector<std::unique_ptr<InsertOp>>& ops);
  // One task in its savepoint, retried when a racing replica committed the
  // same request_id or stub first; `fatal` says the transaction is lost.
  absl::StatusOr<InsertResult> InsertInSavepoint(pg::Connection& conn, NewTask& item,
                                                 StubHints& hints, bool& fatal);
  absl::StatusOr<InsertResult> InsertOne(pg::Connection& conn, NewTask& item, StubHints& hints);
  absl::StatusOr<std::string> AllocateStub(pg::Connection& conn, const std::string& base,
                                           StubHints& hints);
  void RaiseStubHints(pg::Connection& conn, const StubHints& hints);
  absl::StatusOr<Task> UpdateOne(pg::Connection& conn, const Task& task);
  absl::Status DeleteBlobIfUnused(pg::Connection& conn, const std::string& sha);
  // How many tasks the shared limits of `backend` let this claim take
  // (`limit` when none are set); locks the backend's row until commit.
  absl::StatusOr<int> LimitClaim(pg::Connection& conn, const std::string& backend, int limit,
                                 absl::Time now, std::optional<Limits>& limits)
      ABSL_LOCKS_EXCLUDED(limits_mu_);
  absl::StatusOr<std::vector<Task>> ClaimBatch(pg::Connection& conn, const std::string& backend,
                                               int limit, absl::Time now, const std::string& owner,
                                               absl::Time lease_expiry)
      ABSL_LOCKS_EXCLUDED(limits_mu_);

  void ListenerLoop() ABSL_LOCKS_EXCLUDED(listener_mu_);
  // Waits (interruptibly) and opens the LISTEN connection again; false
  // while it cannot.
  bool ReconnectListener(absl::Duration& backoff);
  // The ids of tasks changed by other stores among the pending
  // notifications.
  std::vector<std::string> TakeNotifiedIds(PGconn* raw);
  void Deliver(const std::vector<std::string>& ids) ABSL_LOCKS_EXCLUDED(listener_mu_);

  const PgStoreOptions options_;
  const Clock& clock_;
  const std::string origin_;

  internal::ResourcePool<pg::Connection> pool_;

  internal::BatchQueue<std::unique_ptr<InsertOp>> queue_;
  std::vector<std::unique_ptr<pg::Connection>> inserter_conns_;
  std::vector<std::thread> inserters_;

  absl::Mutex limits_mu_;
  std::map<std::string, Limits> limits_ ABSL_GUARDED_BY(limits_mu_);

  absl::Mutex listener_mu_;
  std::function<void(const Task&)> listener_ ABSL_GUARDED_BY(listener_mu_);
  std::unique_ptr<pg::Connection> listen_conn_;
  int wake_pipe_[2] = {-1, -1};
  std::atomic<bool> listener_stop_{false};
  std::thread listener_thread_;

  std::atomic<int64_t> commits_{0};
  std::atomic<int64_t> ops_{0};
  std::atomic<int64_t> notifications_{0};
};

}  // namespace videotask::store

#endif  // VIDEOTASK_SERVER_STORE_POSTGRES_PG_TASK_STORE_H_
