// Daily budgets in the engine, driven deterministically (a fake clock, an
// inline executor, a real SQLite store in a temp dir, the mock backend): a
// budget stops dispatch at its limit and lets go at 00:00 UTC, a caller's
// budget holds for that caller alone, an ambiguous create stays spent and a
// refused one is given back; provider_status says which budget and when it
// resets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "backends/mock/mock_backend.h"
#include "common/clock.h"
#include "common/executor.h"
#include "server/engine/engine.h"
#include "server/store/sqlite/sqlite_task_store.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace videotask::engine {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::videotask::testing::IsOk;

absl::Time Utc(const char* rfc3339) {
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &err)) << err;
  return t;
}

class EngineBudgetsTest : public ::testing::Test {
 protected:
  // Each mock task costs $0.04 (testing::MockNewTask).
  void Open(double backend_budget_usd, double caller_budget_usd = 0) {
    clock_.SetTime(Utc("2026-12-02T23:50:00Z"));
    store::SqliteStoreOptions options;
    options.data_dir = tmp_.path() + "/data";
    options.clock = &clock_;
    auto opened = store::SqliteTaskStore::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);
    backends::BackendConfig config;
    config.name = "mock";
    config.max_concurrency = 10;
    config.poll_interval = absl::Seconds(6);
    config.daily_budget_usd = backend_budget_usd;
    std::vector<EngineBackend> backends;
    auto mock = std::make_unique<backends::MockBackend>(config, clock_);
    mock_ = mock.get();
    backends.push_back(EngineBackend{config, std::move(mock)});
    EngineOptions engine_options;
    engine_options.owner = "test-owner";
    engine_options.output_dir = tmp_.path() + "/out";
    engine_options.daily_budget_usd_per_caller = caller_budget_usd;
    engine_ = std::make_unique<Engine>(engine_options, *store_, std::move(backends), clock_, rng_,
                                       executor_, hub_);
    ASSERT_TRUE(engine_->Recover().ok());
  }

  // One task of `caller`; its id.
  std::string Submit(const std::string& caller,
                     const std::map<std::string, std::string>& labels = {
                         {"mock.latency_ms", "600000"}}) {
    store::NewTask nt = testing::MockNewTask(seed_++, labels);
    nt.task.caller = caller;
    absl::Notification done;
    std::string id;
    engine_->SubmitAsync({std::move(nt)}, [&](store::InsertResults results) {
      EXPECT_THAT(results[0].status(), IsOk());
      if (results[0].ok()) id = results[0]->task.id;
      done.Notify();
    });
    done.WaitForNotification();
    clock_.Advance(absl::Milliseconds(1));  // distinct create times
    return id;
  }

  Task Get(const std::string& id) {
    absl::StatusOr<Task> task = store_->Get(id);
    EXPECT_THAT(task.status(), IsOk());
    return task.value_or(Task());
  }

  // Runs the engine for `seconds` of fake time, a second at a time.
  void RunFor(int seconds) {
    for (int i = 0; i < seconds; ++i) {
      engine_->RunOnce();
      clock_.Advance(absl::Seconds(1));
    }
    engine_->RunOnce();
  }

  int64_t Spent(store::DailySpend::Kind kind, const std::string& name) {
    absl::StatusOr<std::vector<store::DailySpend>> rows = store_->ListDailySpend(clock_.Now());
    EXPECT_THAT(rows.status(), IsOk());
    for (const store::DailySpend& s : rows.value_or(std::vector<store::DailySpend>())) {
      if (s.kind == kind && s.name == name) return s.spent_micros;
    }
    return 0;
  }

  testing::TempDir tmp_;
  FakeClock clock_;
  std::mt19937_64 rng_{42};
  InlineExecutor executor_;
  WatchHub hub_;
  std::unique_ptr<store::SqliteTaskStore> store_;
  backends::MockBackend* mock_ = nullptr;
  std::unique_ptr<Engine> engine_;
  int seed_ = 0;
};

TEST_F(EngineBudgetsTest, BackendBudgetStopsDispatchAtTheLimitAndReleasesItTheNextUtcDay) {
  Open(/*backend_budget_usd=*/0.10);  // two tasks of $0.04 fit, a third does not
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Submit("alice"));
  RunFor(60);
  EXPECT_EQ(mock_->TotalCreates(), 2);
  EXPECT_EQ(Get(ids[1]).state, TaskState::kRunning);
  const Task waiting = Get(ids[2]);
  ASSERT_EQ(waiting.state, TaskState::kQueued);
  EXPECT_EQ(waiting.estimated_cost_micros, 40'000);
  EXPECT_THAT(engine_->DescribeWait(waiting),
              AllOf(HasSubstr("daily budget of backend mock"), HasSubstr("$0.08 of $0.10"),
                    HasSubstr("costs $0.04"), HasSubstr("resets at 2026-12-03T00:00:00Z")));
  EXPECT_EQ(Spent(store::DailySpend::Kind::kBackend, "mock"), 80'000);

  // Up to 23:59:59 nothing more is sent; at 00:00 UTC two more go.
  clock_.SetTime(Utc("2026-12-02T23:59:59Z"));
  engine_->RunOnce();
  EXPECT_EQ(mock_->TotalCreates(), 2);
  clock_.SetTime(Utc("2026-12-03T00:00:00Z"));
  engine_->RunOnce();
  EXPECT_EQ(mock_->TotalCreates(), 4);
  EXPECT_EQ(Get(ids[3]).state, TaskState::kRunning);
  EXPECT_EQ(Get(ids[4]).state, TaskState::kQueued);
  EXPECT_EQ(Spent(store::DailySpend::Kind::kBackend, "mock"), 80'000);  // the new day's
  EXPECT_THAT(engine_->DescribeWait(Get(ids[4])),
              HasSubstr("resets at 2026-12-04T00:00:00Z"));
}

TEST_F(EngineBudgetsTest, CallerBudgetHoldsForThatCallerAlone) {
  Open(/*backend_budget_usd=*/0, /*caller_budget_usd=*/0.05);  // one task per caller
  std::vector<std::string> alice, bob;
  for (int i = 0; i < 3; ++i) alice.push_back(Submit("alice"));
  for (int i = 0; i < 3; ++i) bob.push_back(Submit("bob"));
  RunFor(30);
  EXPECT_EQ(mock_->TotalCreates(), 2);
  EXPECT_EQ(Get(alice[0]).state, TaskState::kRunning);
  EXPECT_EQ(Get(bob[0]).state, TaskState::kRunning);
  EXPECT_THAT(engine_->DescribeWait(Get(alice[1])),
              AllOf(HasSubstr("daily budget of caller alice"), HasSubstr("$0.04 of $0.05")));
  EXPECT_THAT(engine_->DescribeWait(Get(bob[2])), HasSubstr("caller bob"));
  EXPECT_EQ(Spent(store::DailySpend::Kind::kCaller, "alice"), 40'000);
  EXPECT_EQ(Spent(store::DailySpend::Kind::kCaller, "bob"), 40'000);
  EXPECT_EQ(Spent(store::DailySpend::Kind::kBackend, "mock"), 80'000);
  // A new caller still has its whole budget.
  const std::string carol = Submit("carol");
  RunFor(2);
  EXPECT_EQ(Get(carol).state, TaskState::kRunning);
}

TEST_F(EngineBudgetsTest, AnAmbiguousCreateStaysSpentARefusedOneIsGivenBack) {
  Open(/*backend_budget_usd=*/0.08);  // two tasks
  const std::string ambiguous = Submit(
      "alice", {{"mock.start_errors", "1"}, {"mock.start_error", "ambiguous"}});
  const std::string refused = Submit(
      "alice", {{"mock.start_errors", "1"}, {"mock.start_error", "unavailable"},
                {"mock.latency_ms", "600000"}});
  const std::string third = Submit("alice");
  engine_->RunOnce();  // claims the first two ($0.08): the third does not fit
  const Task failed = Get(ambiguous);
  EXPECT_EQ(failed.state, TaskState::kFailed);
  EXPECT_EQ(failed.error.code, "SUBMISSION_AMBIGUOUS");
  EXPECT_EQ(Get(refused).state, TaskState::kQueued);  // retried later
  // The ambiguous create counts; the refused one was given back, so the
  // third task fits now.
  EXPECT_EQ(Spent(store::DailySpend::Kind::kBackend, "mock"), 40'000);
  clock_.Advance(absl::Seconds(1));  // the dispatcher looks again within a second
  engine_->RunOnce();
  EXPECT_EQ(Get(third).state, TaskState::kRunning);
  EXPECT_EQ(Spent(store::DailySpend::Kind::kBackend, "mock"), 80'000);
  // The refused task's retry falls due, but the day's budget is gone.
  RunFor(120);
  const Task retry = Get(refused);
  EXPECT_EQ(retry.state, TaskState::kQueued);
  EXPECT_THAT(engine_->DescribeWait(retry), HasSubstr("daily budget of backend mock"));
  EXPECT_EQ(mock_->CreateCount(ambiguous), 1);
  EXPECT_EQ(mock_->CreateCount(refused), 0);
}

}  // namespace
}  // namespace videotask::engine
