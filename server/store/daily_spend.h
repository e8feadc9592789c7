// The daily budgets in the store (table `daily_spend`), written once for
// every engine: what each backend and caller spent per UTC day, in
// micro-dollars, and the budget side of a claim (ClaimBudget), which runs in
// the claim's own transaction so that the check and the spend are one step.
#ifndef VIDEOTASK_SERVER_STORE_DAILY_SPEND_H_
#define VIDEOTASK_SERVER_STORE_DAILY_SPEND_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/store/dialect.h"
#include "server/store/sql_session.h"
#include "server/store/task_store.h"

namespace videotask::store::internal {

struct CallerQueue;

// "backend" or "caller": the kind column of daily_spend.
absl::string_view SpendKindName(DailySpend::Kind kind);

class SpendTable {
 public:
  explicit SpendTable(const Dialect& dialect);

  // The spend of (day, kind, name), its row created at 0 when missing and
  // locked until the transaction ends where the engine can (PostgreSQL:
  // FOR UPDATE; SQLite has one writer).
  absl::StatusOr<int64_t> Lock(SqlSession& session, int64_t day, DailySpend::Kind kind,
                               absl::string_view name) const;
  // Adds `micros` (> 0) to (day, kind, name).
  absl::Status Add(SqlSession& session, int64_t day, DailySpend::Kind kind,
                   absl::string_view name, int64_t micros) const;
  // Takes `micros` off (day, kind, name), never below 0.
  absl::Status Subtract(SqlSession& session, int64_t day, DailySpend::Kind kind,
                        absl::string_view name, int64_t micros) const;
  // Every row of `day`, backends first, by name.
  absl::StatusOr<std::vector<DailySpend>> List(SqlSession& session, int64_t day) const;
  // Gives the cost of `task` back to its backend and caller (RefundDailySpend).
  absl::Status Refund(SqlSession& session, const Task& task, int64_t day) const;

 private:
  const std::string select_;  // day, kind, name -> spent_micros (locked on PostgreSQL)
  const std::string create_;  // day, kind, name: a row at 0 unless there is one
  const std::string add_;     // day, kind, name, micros
  const std::string subtract_;  // day, kind, name, micros
  const std::string list_;      // day -> kind, name, spent_micros
};

// The budget side of one claim of a backend. Prepare locks the spend rows
// of the limited budgets (the backend's first, then the callers' by name:
// one order for every writer) and drops the candidates that cannot fit;
// Take checks each picked task against what is left of the backend's
// budget; Commit adds what the claim took to the day's spend.
class ClaimBudget {
 public:
  // `budgets` may be null (no limits; spend is still counted).
  ClaimBudget(const SpendTable& table, const DailyBudgets* budgets, absl::string_view backend,
              absl::Time now);

  absl::Status Prepare(SqlSession& session, std::vector<CallerQueue>& queues);
  // Whether the picked task `id` fits what is left of the backend's budget
  // (and takes its cost from it if so).
  bool Take(const std::string& id);
  // A task the claim took: its cost is spent.
  void Charge(const std::string& caller, int64_t cost_micros);
  absl::Status Commit(SqlSession& session);

 private:
  const SpendTable& table_;
  const int64_t day_;
  const std::string backend_;
  int64_t backend_limit_ = 0;  // 0 = none
  int64_t caller_limit_ = 0;
  int64_t backend_left_ = 0;   // when backend_limit_ > 0
  bool backend_locked_ = false;
  absl::flat_hash_map<std::string, int64_t> cost_of_;  // candidate id -> cost
  int64_t backend_spent_ = 0;                          // by this claim
  std::map<std::string, int64_t> caller_spent_;        // by this claim, by name
};

}  // namespace videotask::store::internal

#endif  // VIDEOTASK_SERVER_STORE_DAILY_SPEND_H_
