// PgTaskStore's claims: SKIP LOCKED picks, and the per-backend limits that
// every replica sharing the database honours.
#include "server/store/postgres/pg_task_store.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "server/store/postgres/pg_session.h"

namespace videotask::store {
namespace {

using internal::CompareMicros;
using pg::Connection;
using pg::Params;
using pg::Result;

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
constexpr char kSetNextFreeSql[] = "UPDATE backend_limits SET next_free_at = $2 WHERE backend = $1";

}  // namespace

absl::StatusOr<int> PgTaskStore::LimitClaim(Connection& conn, const std::string& backend, int limit,
                                            absl::Time now, std::optional<Limits>& limits) {
  {
    absl::MutexLock lock(&limits_mu_);
    auto it = limits_.find(backend);
    if (it != limits_.end()) limits = it->second;
  }
  if (!limits.has_value()) return limit;
  // Serializes claims of this backend across replicas until commit.
  VT_RETURN_IF_ERROR(
      conn.Exec(kEnsureLimitsSql, Params()
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
    if (next_free_at > CompareMicros(now)) limit = 0;
    limit = std::min(limit, 1);
  }
  return limit;
}

absl::StatusOr<std::vector<Task>> PgTaskStore::ClaimBatch(Connection& conn,
                                                          const std::string& backend, int limit,
                                                          absl::Time now, const std::string& owner,
                                                          absl::Time lease_expiry) {
  std::optional<Limits> limits;
  VT_ASSIGN_OR_RETURN(limit, LimitClaim(conn, backend, limit, now, limits));
  if (limit <= 0) return std::vector<Task>();
  pg::PgSession session(conn);
  const std::shared_ptr<const DailyBudgets> budgets = Budgets();
  VT_ASSIGN_OR_RETURN(std::vector<Task> tasks, table_.Claim(session, backend, limit, now, owner,
                                                            lease_expiry, budgets.get()));
  if (limits.has_value() && limits->min_interval > absl::ZeroDuration() && !tasks.empty()) {
    VT_RETURN_IF_ERROR(conn.Exec(kSetNextFreeSql, Params().Text(backend).Int(
                                                      CompareMicros(now + limits->min_interval)))
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
  VT_RETURN_IF_ERROR(InTransaction(lease.get(), [&](Connection& conn) -> absl::Status {
    VT_ASSIGN_OR_RETURN(result,
                        ClaimBatch(conn, backend_copy, limit, now, owner_copy, lease_expiry));
    return absl::OkStatus();
  }));
  return result;
}

void PgTaskStore::SetBackendLimits(absl::string_view backend, int max_concurrency,
                                   absl::Duration min_submit_interval) {
  {
    absl::MutexLock lock(&limits_mu_);
    limits_[std::string(backend)] = Limits{max_concurrency, min_submit_interval};
  }
  ConnLease lease = AcquireConn();
  absl::Status status =
      lease.get()
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

}  // namespace videotask::store
