// Daily budgets (docs/engine.md): the store enforces them in its claim
// (TaskStore::ClaimQueued skips what does not fit, so the limit holds across
// replicas); the engine hands the budgets to the store, gives a cost back
// when a create definitely never reached the provider, and says why a task
// waits (Task.provider_status) from the day's spend, read at most once per
// pause_refresh.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "server/domain/daily_budget.h"
#include "server/engine/engine.h"

namespace videotask::engine {

store::DailyBudgets Engine::MakeDailyBudgets() const {
  store::DailyBudgets budgets;
  for (const EngineBackend& b : backends_) {
    const int64_t limit = UsdToMicros(b.config.daily_budget_usd);
    if (limit > 0) budgets.backend_micros[b.config.name] = limit;
  }
  budgets.per_caller_micros = UsdToMicros(options_.daily_budget_usd_per_caller);
  return budgets;
}

bool Engine::HasDailyBudgets() const {
  return !budgets_.backend_micros.empty() || budgets_.per_caller_micros > 0;
}

void Engine::GiveBackSpend(const Task& claimed) {
  if (claimed.estimated_cost_micros <= 0) return;
  // update_time is the claim's time: the cost went to that UTC day.
  absl::Status refunded = store_.RefundDailySpend(claimed, claimed.update_time);
  if (!refunded.ok()) {
    VT_LOG_WARN("giving back the estimated cost of task {} failed (it stays counted): {}",
                claimed.id, refunded.ToString());
  }
  absl::MutexLock lock(&mu_);
  spend_read_ = absl::InfinitePast();  // read again before it is described
}

void Engine::RefreshSpend(absl::Time now) {
  if (!HasDailyBudgets()) return;
  {
    absl::MutexLock lock(&mu_);
    if (now < spend_read_ + options_.pause_refresh && UtcDay(now) == UtcDay(spend_read_)) return;
    spend_read_ = now;
  }
  absl::StatusOr<std::vector<store::DailySpend>> spent = store_.ListDailySpend(now);
  if (!spent.ok()) {
    VT_LOG_WARN("reading the daily spend failed: {}", spent.status().ToString());
    return;
  }
  absl::MutexLock lock(&mu_);
  spend_.clear();
  for (store::DailySpend& s : *spent) {
    spend_[{s.kind, std::move(s.name)}] = s.spent_micros;
  }
}

void Engine::NoteSpentLocked(const Task& claimed) {
  if (!HasDailyBudgets() || claimed.estimated_cost_micros <= 0) return;
  if (UtcDay(spend_read_) != UtcDay(claimed.update_time)) return;
  spend_[{store::DailySpend::Kind::kBackend, claimed.spec.backend}] += claimed.estimated_cost_micros;
  spend_[{store::DailySpend::Kind::kCaller, claimed.caller}] += claimed.estimated_cost_micros;
}

std::string Engine::BudgetWait(const Task& task, absl::Time now) const {
  if (!HasDailyBudgets() || task.estimated_cost_micros <= 0) return "";
  struct Check {
    store::DailySpend::Kind kind;
    const std::string& name;
    int64_t limit;
  };
  auto it = budgets_.backend_micros.find(task.spec.backend);
  const Check checks[] = {
      {store::DailySpend::Kind::kBackend, task.spec.backend,
       it == budgets_.backend_micros.end() ? 0 : it->second},
      {store::DailySpend::Kind::kCaller, task.caller, budgets_.per_caller_micros},
  };
  absl::MutexLock lock(&mu_);
  if (UtcDay(spend_read_) != UtcDay(now)) return "";  // not read today yet
  for (const Check& c : checks) {
    if (c.limit <= 0) continue;
    auto found = spend_.find({c.kind, c.name});
    const int64_t spent = found == spend_.end() ? 0 : found->second;
    if (spent + task.estimated_cost_micros <= c.limit) continue;
    return absl::StrCat(
        "waiting for the daily budget of ",
        c.kind == store::DailySpend::Kind::kBackend ? "backend " : "caller ", c.name, ": ",
        FormatUsd(spent), " of ", FormatUsd(c.limit), " spent today (UTC), this task costs ",
        FormatUsd(task.estimated_cost_micros), "; resets at ",
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", NextUtcMidnight(now), absl::UTCTimeZone()));
  }
  return "";
}

}  // namespace videotask::engine
