// The conformance tests of operating the queue, for every store: paused
// backends, a task's earlier tries, and images kept for retries.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "server/domain/task.h"
#include "tests/server/store/store_conformance.h"
#include "tests/testing/status_matchers.h"

namespace videotask::store {
namespace {

using ::testing::HasSubstr;
using ::videotask::testing::IsOk;
using ::videotask::testing::StatusIs;

BackendPause MakePause(const std::string& backend, const std::string& reason, absl::Time since) {
  BackendPause pause;
  pause.backend = backend;
  pause.reason = reason;
  pause.caller = "ops-team";
  pause.since = since;
  return pause;
}

TEST_P(TaskStoreConformanceTest, PausesAreStoredReplacedAndLifted) {
  const absl::Time t0 = clock_.Now();
  VT_ASSERT_OK_AND_ASSIGN(BackendPause stored,
                          store_->PauseBackend(MakePause("runway", "outage", t0)));
  EXPECT_EQ(stored.backend, "runway");
  EXPECT_EQ(stored.reason, "outage");
  EXPECT_EQ(stored.caller, "ops-team");
  EXPECT_EQ(stored.since, t0);
  VT_ASSERT_OK(store_->PauseBackend(MakePause("fal", "", t0)).status());

  // Pausing again replaces the reason and caller, keeps since.
  BackendPause again = MakePause("runway", "still down", t0 + absl::Minutes(5));
  again.caller = "someone-else";
  VT_ASSERT_OK_AND_ASSIGN(stored, store_->PauseBackend(again));
  EXPECT_EQ(stored.reason, "still down");
  EXPECT_EQ(stored.caller, "someone-else");
  EXPECT_EQ(stored.since, t0);

  VT_ASSERT_OK_AND_ASSIGN(std::vector<BackendPause> pauses, store_->ListBackendPauses());
  ASSERT_EQ(pauses.size(), 2u);
  EXPECT_EQ(pauses[0].backend, "fal");  // by name
  EXPECT_EQ(pauses[1].backend, "runway");
  EXPECT_EQ(pauses[1].reason, "still down");

  VT_ASSERT_OK_AND_ASSIGN(bool lifted, store_->ResumeBackend("runway"));
  EXPECT_TRUE(lifted);
  VT_ASSERT_OK_AND_ASSIGN(lifted, store_->ResumeBackend("runway"));
  EXPECT_FALSE(lifted);
  VT_ASSERT_OK_AND_ASSIGN(pauses, store_->ListBackendPauses());
  ASSERT_EQ(pauses.size(), 1u);
  EXPECT_EQ(pauses[0].backend, "fal");

  EXPECT_THAT(store_->PauseBackend(MakePause("", "x", t0)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("backend")));
}

TEST_P(TaskStoreConformanceTest, PausesSurviveReopening) {
  const absl::Time t0 = clock_.Now();
  VT_ASSERT_OK(store_->PauseBackend(MakePause("mock", "maintenance", t0)).status());
  OpenStore();
  VT_ASSERT_OK_AND_ASSIGN(std::vector<BackendPause> pauses, store_->ListBackendPauses());
  ASSERT_EQ(pauses.size(), 1u);
  EXPECT_EQ(pauses[0].backend, "mock");
  EXPECT_EQ(pauses[0].reason, "maintenance");
  EXPECT_EQ(pauses[0].caller, "ops-team");
  EXPECT_EQ(pauses[0].since, t0);
}

TEST_P(TaskStoreConformanceTest, EarlierTriesAreStoredWithTheTask) {
  Task task = InsertOk(MakeTask("tries"));
  EXPECT_TRUE(task.attempts.empty());
  const absl::Time t0 = clock_.Now();
  TaskAttempt first;
  first.provider_task_id = "";
  first.state = TaskState::kFailed;
  first.error = TaskError{"SUBMISSION_AMBIGUOUS", "the create's answer was lost", false, ""};
  first.start_time = t0;
  first.end_time = t0 + absl::Seconds(30);
  TaskAttempt second;
  second.provider_task_id = "p-2 \"quoted\" \xc3\xa9";
  second.state = TaskState::kCancelled;
  second.error = TaskError{"CANCELLED", "cancelled by a caller", false, "X.Y"};
  second.start_time = t0 + absl::Minutes(1);  // end unset
  task.attempts = {first, second};
  task.state = TaskState::kQueued;
  VT_ASSERT_OK_AND_ASSIGN(Task stored, store_->Update(task));
  OpenStore();
  VT_ASSERT_OK_AND_ASSIGN(Task got, store_->Get("tries"));
  ASSERT_EQ(got.attempts.size(), 2u);
  EXPECT_EQ(got.attempts[0].provider_task_id, "");
  EXPECT_EQ(got.attempts[0].state, TaskState::kFailed);
  EXPECT_EQ(got.attempts[0].error.code, "SUBMISSION_AMBIGUOUS");
  EXPECT_EQ(got.attempts[0].error.message, "the create's answer was lost");
  EXPECT_EQ(got.attempts[0].start_time, t0);
  EXPECT_EQ(got.attempts[0].end_time, t0 + absl::Seconds(30));
  EXPECT_EQ(got.attempts[1].provider_task_id, second.provider_task_id);
  EXPECT_EQ(got.attempts[1].state, TaskState::kCancelled);
  EXPECT_EQ(got.attempts[1].error.provider_code, "X.Y");
  EXPECT_EQ(got.attempts[1].start_time, t0 + absl::Minutes(1));
  EXPECT_EQ(got.attempts[1].end_time, absl::InfinitePast());

  // A later update without a change to them keeps them; clearing them clears.
  got.progress = 0.5f;
  VT_ASSERT_OK_AND_ASSIGN(got, store_->Update(got));
  EXPECT_EQ(got.attempts.size(), 2u);
  got.attempts.clear();
  VT_ASSERT_OK_AND_ASSIGN(got, store_->Update(got));
  VT_ASSERT_OK_AND_ASSIGN(got, store_->Get("tries"));
  EXPECT_TRUE(got.attempts.empty());
}

TEST_P(TaskStoreConformanceTest, ImagesOfFailedTasksStayForARetry) {
  for (int64_t size : {int64_t{10}, kConformanceInlineMax * 4}) {
    SCOPED_TRACE(size);
    std::string image(static_cast<size_t>(size), static_cast<char>('k' + size % 7));
    std::string sha = Sha256Hex(image);
    Task task = MakeTask(absl::StrCat("failing", size));
    task.image_sha256 = sha;
    task = InsertOk(task, image);
    task.state = TaskState::kFailed;
    VT_ASSERT_OK_AND_ASSIGN(task, store_->Update(task));
    VT_ASSERT_OK_AND_ASSIGN(std::string kept, store_->ReadImage(sha));
    EXPECT_EQ(kept, image);
    // Retried, then succeeded: now nothing needs it.
    task.state = TaskState::kQueued;
    VT_ASSERT_OK_AND_ASSIGN(task, store_->Update(task));
    task.state = TaskState::kSucceeded;
    VT_ASSERT_OK(store_->Update(task).status());
    EXPECT_THAT(store_->ReadImage(sha), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
    EXPECT_FALSE(harness_->HasBlobOutsideDatabase(sha));
  }
}

}  // namespace
}  // namespace videotask::store
