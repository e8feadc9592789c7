// The conformance suite, daily budgets: ClaimQueued skips what does not fit
// a backend's or a caller's budget for the UTC day of its `now`, adds what
// it claims to daily_spend in the same transaction, and RefundDailySpend
// gives a cost back.
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "server/domain/daily_budget.h"
#include "server/domain/task.h"
#include "tests/server/store/store_conformance.h"
#include "tests/testing/status_matchers.h"

namespace videotask::store {
namespace {

using ::testing::ElementsAre;
using ::videotask::testing::IsOk;

std::vector<std::string> Ids(const std::vector<Task>& tasks) {
  std::vector<std::string> ids;
  for (const Task& t : tasks) ids.push_back(t.id);
  return ids;
}

// "backend mock=200000", "caller alice=200000", ...
std::vector<std::string> SpendRows(TaskStore& store, absl::Time day) {
  absl::StatusOr<std::vector<DailySpend>> rows = store.ListDailySpend(day);
  EXPECT_THAT(rows, IsOk());
  std::vector<std::string> out;
  if (!rows.ok()) return out;
  for (const DailySpend& s : *rows) {
    if (s.spent_micros == 0) continue;
    out.push_back(absl::StrCat(s.kind == DailySpend::Kind::kBackend ? "backend " : "caller ",
                               s.name, "=", s.spent_micros));
  }
  return out;
}

// The start of the UTC day after `t`'s, plus `plus`.
absl::Time NextDay(absl::Time t, absl::Duration plus = absl::ZeroDuration()) {
  return NextUtcMidnight(t) + plus;
}

}  // namespace


TEST_P(TaskStoreConformanceTest, BackendBudgetStopsClaimsAtTheLimitUntilTheNextUtcDay) {
  for (int i = 0; i < 5; ++i) {
    Task t = MakeTask(absl::StrCat("t", i));
    t.caller = "alice";
    t.create_time = clock_.Now() - absl::Minutes(10 - i);
    t.estimated_cost_micros = 100'000;  // $0.10
    InsertOk(t);
  }
  DailyBudgets budgets;
  budgets.backend_micros["mock"] = 250'000;  // $0.25: two tasks fit, not three
  store_->SetDailyBudgets(budgets);
  const absl::Time now = clock_.Now();
  const absl::Time expiry = now + absl::Minutes(1);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> first,
                          store_->ClaimQueued("mock", 10, now, "me", expiry));
  EXPECT_THAT(Ids(first), ElementsAre("t0", "t1"));
  EXPECT_THAT(SpendRows(*store_, now), ElementsAre("backend mock=200000", "caller alice=200000"));
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> none,
                          store_->ClaimQueued("mock", 10, now, "me", expiry));
  EXPECT_TRUE(none.empty()) << "claimed past the budget";
  // A task that costs nothing still goes; another backend is not limited.
  Task free_task = MakeTask("free");
  free_task.create_time = now;
  InsertOk(free_task);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> free_claim,
                          store_->ClaimQueued("mock", 10, now, "me", expiry));
  EXPECT_THAT(Ids(free_claim), ElementsAre("free"));

  // The next UTC day starts from nothing; yesterday's spend stays as it was.
  const absl::Time tomorrow = NextDay(now, absl::Seconds(1));
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> next_day,
                          store_->ClaimQueued("mock", 10, tomorrow, "me", tomorrow + absl::Minutes(1)));
  EXPECT_THAT(Ids(next_day), ElementsAre("t2", "t3"));
  EXPECT_THAT(SpendRows(*store_, tomorrow),
              ElementsAre("backend mock=200000", "caller alice=200000"));
  EXPECT_THAT(SpendRows(*store_, now), ElementsAre("backend mock=200000", "caller alice=200000"));
}

TEST_P(TaskStoreConformanceTest, PerCallerBudgetLimitsEachCallerAlone) {
  for (const char* caller : {"alice", "bob"}) {
    for (int i = 0; i < 3; ++i) {
      Task t = MakeTask(absl::StrCat(caller, i));
      t.caller = caller;
      t.create_time = clock_.Now() - absl::Minutes(10 - i);
      t.estimated_cost_micros = 100'000;
      InsertOk(t);
    }
  }
  DailyBudgets budgets;
  budgets.per_caller_micros = 250'000;
  store_->SetDailyBudgets(budgets);
  const absl::Time now = clock_.Now();
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> claimed,
                          store_->ClaimQueued("mock", 10, now, "me", now + absl::Minutes(1)));
  EXPECT_THAT(Ids(claimed), ::testing::UnorderedElementsAre("alice0", "alice1", "bob0", "bob1"));
  EXPECT_THAT(SpendRows(*store_, now), ElementsAre("backend mock=400000", "caller alice=200000",
                                                   "caller bob=200000"));
}

TEST_P(TaskStoreConformanceTest, BudgetSkipsATaskTooDearForWhatIsLeftButTakesCheaperOnes) {
  Task dear = MakeTask("dear");
  dear.create_time = clock_.Now() - absl::Minutes(2);
  dear.estimated_cost_micros = 300'000;
  InsertOk(dear);
  Task cheap = MakeTask("cheap");
  cheap.create_time = clock_.Now() - absl::Minutes(1);
  cheap.estimated_cost_micros = 50'000;
  InsertOk(cheap);
  DailyBudgets budgets;
  budgets.backend_micros["mock"] = 100'000;
  store_->SetDailyBudgets(budgets);
  const absl::Time now = clock_.Now();
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> claimed,
                          store_->ClaimQueued("mock", 10, now, "me", now + absl::Minutes(1)));
  EXPECT_THAT(Ids(claimed), ElementsAre("cheap"));
  VT_ASSERT_OK_AND_ASSIGN(Task still, store_->Get("dear"));
  EXPECT_EQ(still.state, TaskState::kQueued);
  EXPECT_EQ(still.estimated_cost_micros, 300'000);
}

TEST_P(TaskStoreConformanceTest, SpendIsCountedWithoutBudgetsAndRefundsGiveItBack) {
  Task t = MakeTask("t");
  t.caller = "alice";
  t.estimated_cost_micros = 70'000;
  InsertOk(t);
  const absl::Time now = clock_.Now();
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> claimed,
                          store_->ClaimQueued("mock", 10, now, "me", now + absl::Minutes(1)));
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].estimated_cost_micros, 70'000);
  EXPECT_THAT(SpendRows(*store_, now), ElementsAre("backend mock=70000", "caller alice=70000"));
  // Given back to the day of the claim (its update_time), never below 0.
  ASSERT_THAT(store_->RefundDailySpend(claimed[0], claimed[0].update_time), IsOk());
  EXPECT_THAT(SpendRows(*store_, now), ElementsAre());
  ASSERT_THAT(store_->RefundDailySpend(claimed[0], claimed[0].update_time), IsOk());
  VT_ASSERT_OK_AND_ASSIGN(std::vector<DailySpend> rows, store_->ListDailySpend(now));
  for (const DailySpend& s : rows) EXPECT_EQ(s.spent_micros, 0) << s.name;
}

}  // namespace videotask::store
