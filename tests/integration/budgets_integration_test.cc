// Daily budgets through a real server (mock backend at $0.01/s, real SQLite
// file, real gRPC): the estimated cost of a task, the price of a model, a
// task held by the budget with its provider_status, and today's spend and
// what is left in ListBackends.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <google/protobuf/util/time_util.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/testing/server_fixture.h"

namespace videotask::testing {
namespace {

using ::testing::AllOf;
using ::testing::DoubleNear;
using ::testing::HasSubstr;

class BudgetsIntegrationTest : public ServerTest {
 protected:
  void Configure(AppConfig& config) override {
    config.backends.front().config.daily_budget_usd = 0.10;  // two $0.04 tasks
    config.daily_budget_usd_per_caller = 0.09;
  }

  v1::Task Submit(int seed) {
    v1::SubmitTaskRequest request = PngRequest(absl::StrCat("shot_", seed, ".png"), seed);
    (*request.mutable_spec()->mutable_labels())["mock.latency_ms"] = "600000";
    grpc::ClientContext ctx;
    v1::Task task;
    grpc::Status status = stub_->SubmitTask(&ctx, request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return task;
  }

  v1::Task Get(const std::string& id) {
    grpc::ClientContext ctx;
    v1::GetTaskRequest request;
    request.set_id(id);
    v1::Task task;
    grpc::Status status = stub_->GetTask(&ctx, request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return task;
  }
};

TEST_F(BudgetsIntegrationTest, ATaskPastTheBudgetWaitsAndListBackendsShowsTheSpend) {
  const absl::Time start = absl::Now();
  if (absl::ToUnixSeconds(start) % 86400 > 86400 - 60) GTEST_SKIP() << "too close to 00:00 UTC";
  std::vector<v1::Task> tasks;
  for (int i = 0; i < 3; ++i) tasks.push_back(Submit(i));
  EXPECT_THAT(tasks[0].estimated_cost_usd(), DoubleNear(0.04, 1e-9));

  // Two are sent; the third waits for the backend's budget.
  v1::Task third;
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (absl::Now() < give_up) {
    third = Get(tasks[2].id());
    if (Get(tasks[0].id()).state() == v1::RUNNING && Get(tasks[1].id()).state() == v1::RUNNING &&
        absl::StrContains(third.provider_status(), "budget")) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(third.state(), v1::QUEUED);
  EXPECT_THAT(third.provider_status(),
              AllOf(HasSubstr("daily budget of backend mock"), HasSubstr("$0.08 of $0.10"),
                    HasSubstr("T00:00:00Z")));
  EXPECT_EQ(mock().TotalCreates(), 2);

  grpc::ClientContext ctx;
  v1::ListBackendsResponse backends;
  ASSERT_TRUE(stub_->ListBackends(&ctx, v1::ListBackendsRequest(), &backends).ok());
  ASSERT_EQ(backends.backends_size(), 1);
  const v1::BackendInfo& mock_info = backends.backends(0);
  EXPECT_THAT(mock_info.models(0).usd_per_second(), DoubleNear(0.01, 1e-9));
  EXPECT_THAT(mock_info.daily_budget_usd(), DoubleNear(0.10, 1e-9));
  EXPECT_THAT(mock_info.spent_today_usd(), DoubleNear(0.08, 1e-9));
  EXPECT_THAT(mock_info.remaining_today_usd(), DoubleNear(0.02, 1e-9));
  const int64_t reset = mock_info.budget_reset_time().seconds();
  EXPECT_EQ(reset % 86400, 0);
  EXPECT_GT(reset, absl::ToUnixSeconds(start));
  EXPECT_LE(reset, absl::ToUnixSeconds(start) + 86400);
  ASSERT_EQ(backends.caller_spend_size(), 1);
  EXPECT_EQ(backends.caller_spend(0).caller(), "anonymous");
  EXPECT_THAT(backends.caller_spend(0).spent_today_usd(), DoubleNear(0.08, 1e-9));
  ASSERT_TRUE(backends.caller_spend(0).has_remaining_today_usd());
  EXPECT_THAT(backends.caller_spend(0).remaining_today_usd(), DoubleNear(0.01, 1e-9));
}

}  // namespace
}  // namespace videotask::testing
