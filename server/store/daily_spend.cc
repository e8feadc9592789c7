#include "server/store/daily_spend.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/domain/daily_budget.h"
#include "server/store/task_rows.h"

namespace videotask::store::internal {
namespace {

constexpr char kKey[] = "day = $1 AND kind = $2 AND name = $3";

// `sql` with "$n" rendered as the dialect's placeholder n.
std::string Render(const Dialect& d, std::string sql) {
  for (int n = 4; n >= 1; --n) {
    const std::string from = absl::StrCat("$", n);
    for (size_t at = sql.find(from); at != std::string::npos; at = sql.find(from, at + 1)) {
      const std::string to = d.Param(n, n == 4 ? "bigint" : "");
      sql.replace(at, from.size(), to);
      at += to.size() - 1;
    }
  }
  return sql;
}

}  // namespace

absl::string_view SpendKindName(DailySpend::Kind kind) {
  switch (kind) {
    case DailySpend::Kind::kBackend:
      return "backend";
    case DailySpend::Kind::kCaller:
      return "caller";
  }
  return "backend";
}

SpendTable::SpendTable(const Dialect& d)
    : select_(Render(d, absl::StrCat("SELECT spent_micros FROM daily_spend WHERE ", kKey,
                                     d.kind() == Dialect::Kind::kPostgres ? " FOR UPDATE" : ""))),
      create_(Render(d, "INSERT INTO daily_spend (day, kind, name, spent_micros) "
                        "VALUES ($1, $2, $3, 0) ON CONFLICT (day, kind, name) DO NOTHING")),
      add_(Render(d, "INSERT INTO daily_spend (day, kind, name, spent_micros) "
                     "VALUES ($1, $2, $3, $4) ON CONFLICT (day, kind, name) DO UPDATE SET "
                     "spent_micros = daily_spend.spent_micros + excluded.spent_micros")),
      subtract_(Render(d, absl::StrCat("UPDATE daily_spend SET spent_micros = CASE WHEN "
                                       "spent_micros > $4 THEN spent_micros - $4 ELSE 0 END "
                                       "WHERE ",
                                       kKey))),
      list_(Render(d, "SELECT kind, name, spent_micros FROM daily_spend WHERE day = $1 "
                      "ORDER BY kind, name")) {}

absl::StatusOr<int64_t> SpendTable::Lock(SqlSession& session, int64_t day, DailySpend::Kind kind,
                                         absl::string_view name) const {
  auto bind = [&](RowWriter& w) { w.Int(day).Text(SpendKindName(kind)).Text(name); };
  for (int pass = 0; pass < 2; ++pass) {
    std::optional<int64_t> spent;
    VT_RETURN_IF_ERROR(session.Query(select_, bind, [&](const RowReader& row) {
      spent = row.Int(0);
      return absl::OkStatus();
    }));
    if (spent.has_value()) return *spent;
    // Usually once a day per backend and caller.
    VT_RETURN_IF_ERROR(session.Exec(create_, bind));
  }
  return absl::InternalError(absl::StrCat("no daily_spend row for ", name, " after creating it"));
}

absl::Status SpendTable::Add(SqlSession& session, int64_t day, DailySpend::Kind kind,
                             absl::string_view name, int64_t micros) const {
  if (micros <= 0) return absl::OkStatus();
  return session.Exec(
      add_, [&](RowWriter& w) { w.Int(day).Text(SpendKindName(kind)).Text(name).Int(micros); });
}

absl::Status SpendTable::Subtract(SqlSession& session, int64_t day, DailySpend::Kind kind,
                                  absl::string_view name, int64_t micros) const {
  if (micros <= 0) return absl::OkStatus();
  return session.Exec(subtract_, [&](RowWriter& w) {
    w.Int(day).Text(SpendKindName(kind)).Text(name).Int(micros);
  });
}

absl::Status SpendTable::Refund(SqlSession& session, const Task& task, int64_t day) const {
  // The backend's row first, as in a claim.
  VT_RETURN_IF_ERROR(Subtract(session, day, DailySpend::Kind::kBackend, task.spec.backend,
                              task.estimated_cost_micros));
  return Subtract(session, day, DailySpend::Kind::kCaller, task.caller,
                  task.estimated_cost_micros);
}

absl::StatusOr<std::vector<DailySpend>> SpendTable::List(SqlSession& session, int64_t day) const {
  std::vector<DailySpend> out;
  VT_RETURN_IF_ERROR(session.Query(
      list_, [&](RowWriter& w) { w.Int(day); },
      [&](const RowReader& row) {
        DailySpend spend;
        spend.kind = row.Text(0) == "caller" ? DailySpend::Kind::kCaller
                                             : DailySpend::Kind::kBackend;
        spend.name = row.Text(1);
        spend.spent_micros = row.Int(2);
        out.push_back(std::move(spend));
        return absl::OkStatus();
      }));
  return out;
}

ClaimBudget::ClaimBudget(const SpendTable& table, const DailyBudgets* budgets,
                         absl::string_view backend, absl::Time now)
    : table_(table), day_(UtcDay(now)), backend_(backend) {
  if (budgets == nullptr) return;
  auto it = budgets->backend_micros.find(backend_);
  if (it != budgets->backend_micros.end()) backend_limit_ = std::max<int64_t>(it->second, 0);
  caller_limit_ = std::max<int64_t>(budgets->per_caller_micros, 0);
}

absl::Status ClaimBudget::Prepare(SqlSession& session, std::vector<CallerQueue>& queues) {
  for (const CallerQueue& q : queues) {
    for (const ClaimCandidate& c : q.next) cost_of_[c.id] = c.cost_micros;
  }
  if (backend_limit_ == 0 && caller_limit_ == 0) return absl::OkStatus();
  // The backend's row is locked whenever a budget applies, so every writer
  // takes the rows in one order: backend, then callers by name.
  VT_ASSIGN_OR_RETURN(int64_t backend_spent,
                      table_.Lock(session, day_, DailySpend::Kind::kBackend, backend_));
  backend_locked_ = true;
  backend_left_ = std::max<int64_t>(backend_limit_ - backend_spent, 0);
  std::sort(queues.begin(), queues.end(),
            [](const CallerQueue& a, const CallerQueue& b) { return a.caller < b.caller; });
  for (CallerQueue& q : queues) {
    int64_t caller_left = -1;  // no caller limit
    if (caller_limit_ > 0) {
      VT_ASSIGN_OR_RETURN(int64_t spent,
                          table_.Lock(session, day_, DailySpend::Kind::kCaller, q.caller));
      caller_left = std::max<int64_t>(caller_limit_ - spent, 0);
    }
    // A caller's tasks are picked in this order: each kept one fits what
    // is left once the ones before it are paid for.
    std::vector<ClaimCandidate> kept;
    for (ClaimCandidate& c : q.next) {
      if (backend_limit_ > 0 && c.cost_micros > backend_left_) continue;
      if (caller_left >= 0) {
        if (c.cost_micros > caller_left) continue;
        caller_left -= c.cost_micros;
      }
      kept.push_back(std::move(c));
    }
    q.next = std::move(kept);
  }
  return absl::OkStatus();
}

bool ClaimBudget::Take(const std::string& id) {
  if (backend_limit_ == 0) return true;
  auto it = cost_of_.find(id);
  const int64_t cost = it == cost_of_.end() ? 0 : it->second;
  if (cost > backend_left_) return false;
  backend_left_ -= cost;
  return true;
}

void ClaimBudget::Charge(const std::string& caller, int64_t cost_micros) {
  if (cost_micros <= 0) return;
  backend_spent_ += cost_micros;
  caller_spent_[caller] += cost_micros;
}

absl::Status ClaimBudget::Commit(SqlSession& session) {
  if (backend_spent_ == 0) return absl::OkStatus();
  VT_RETURN_IF_ERROR(
      table_.Add(session, day_, DailySpend::Kind::kBackend, backend_, backend_spent_));
  for (const auto& [caller, micros] : caller_spent_) {
    VT_RETURN_IF_ERROR(table_.Add(session, day_, DailySpend::Kind::kCaller, caller, micros));
  }
  return absl::OkStatus();
}

}  // namespace videotask::store::internal
