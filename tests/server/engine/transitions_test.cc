// The transitions are pure: a task and an outcome in, the next task out.
#include "server/engine/transitions.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/engine/error_policy.h"

namespace videotask::engine {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

Task Submitting() {
  Task task;
  task.id = "t1";
  task.state = TaskState::kSubmitting;
  task.attempt_count = 2;
  task.error = TaskError{kErrProviderUnavailable, "503", true, "HTTP_503"};
  task.next_attempt_time = kNow - absl::Seconds(1);
  task.lease_owner = "me";
  task.update_time = kNow - absl::Minutes(1);
  return task;
}

Task Running() {
  Task task = OnStarted(Submitting(), "p-1", kNow);
  task.provider_status = "RUNNING";
  task.progress = 0.25f;
  return task;
}

backends::PollResult Polled(backends::ProviderState state, const char* text, float progress = 0) {
  backends::PollResult polled;
  polled.state = state;
  polled.status_text = text;
  polled.progress = progress;
  return polled;
}

TEST(TransitionsTest, StartedRunsWithTheProviderIdAndNoError) {
  Task task = OnStarted(Submitting(), "p-1", kNow);
  EXPECT_EQ(task.state, TaskState::kRunning);
  EXPECT_EQ(task.provider_task_id, "p-1");
  EXPECT_EQ(task.provider_status, "PENDING");
  EXPECT_EQ(task.attempt_count, 0);
  EXPECT_TRUE(task.error.empty());
  EXPECT_EQ(task.next_attempt_time, absl::InfinitePast());
  EXPECT_EQ(task.lease_owner, "me");  // still held
  EXPECT_EQ(task.update_time, kNow);
}

TEST(TransitionsTest, PolledStillRunningMirrorsTheProvider) {
  Task before = Running();
  Task after = OnPolled(before, Polled(backends::ProviderState::kThrottled, "THROTTLED", 0.5f), kNow);
  EXPECT_EQ(after.state, TaskState::kRunning);
  EXPECT_EQ(after.provider_status, "THROTTLED");
  EXPECT_FLOAT_EQ(after.progress, 0.5f);
  EXPECT_TRUE(after.error.empty());
  EXPECT_TRUE(PollChangedTask(before, after));
  Task same = OnPolled(after, Polled(backends::ProviderState::kThrottled, "THROTTLED", 0.5f), kNow);
  EXPECT_FALSE(PollChangedTask(after, same));
  // A poll that works after a failed one clears the retry: worth a write.
  Task retried = ToStepRetry(after, TaskError{kErrProviderUnavailable, "503", true, ""}, kNow);
  EXPECT_TRUE(PollChangedTask(
      retried, OnPolled(retried, Polled(backends::ProviderState::kThrottled, "THROTTLED", 0.5f), kNow)));
}

TEST(TransitionsTest, PolledSucceededDownloadsTheOutputUrls) {
  backends::PollResult polled = Polled(backends::ProviderState::kSucceeded, "SUCCEEDED");
  polled.output_urls = {"https://example.invalid/a.mp4"};
  Task task = OnPolled(Running(), polled, kNow);
  EXPECT_EQ(task.state, TaskState::kDownloading);
  EXPECT_FLOAT_EQ(task.progress, 1);
  EXPECT_EQ(task.output_urls, polled.output_urls);
}

TEST(TransitionsTest, PolledFailedKeepsTheProvidersCode) {
  backends::PollResult polled = Polled(backends::ProviderState::kFailed, "FAILED");
  polled.failure_code = "SAFETY.INPUT.IMAGE";
  Task task = OnPolled(Running(), polled, kNow);
  EXPECT_EQ(task.state, TaskState::kFailed);
  EXPECT_EQ(task.error.code, kErrProviderFailed);
  EXPECT_EQ(task.error.message, "the provider failed the task");
  EXPECT_EQ(task.error.provider_code, "SAFETY.INPUT.IMAGE");
  EXPECT_EQ(task.end_time, kNow);
  EXPECT_TRUE(task.lease_owner.empty());
}

TEST(TransitionsTest, PolledCancelledEndsTheTask) {
  Task task = OnPolled(Running(), Polled(backends::ProviderState::kCancelled, "CANCELLED"), kNow);
  EXPECT_EQ(task.state, TaskState::kCancelled);
  EXPECT_EQ(task.error.code, kErrCancelled);
  EXPECT_EQ(task.end_time, kNow);
  EXPECT_TRUE(task.lease_owner.empty());
}

TEST(TransitionsTest, FetchedSucceedsWithTheOutput) {
  Task downloading = Running();
  downloading.state = TaskState::kDownloading;
  Task task = OnFetched(downloading, OutputInfo{"/out/x.mp4", 42, "ab"}, kNow);
  EXPECT_EQ(task.state, TaskState::kSucceeded);
  EXPECT_EQ(task.output_path, "/out/x.mp4");
  EXPECT_EQ(task.output_size_bytes, 42);
  EXPECT_EQ(task.output_sha256, "ab");
  EXPECT_EQ(task.end_time, kNow);
  EXPECT_TRUE(task.lease_owner.empty());
}

TEST(TransitionsTest, CreateRetryGoesBackToTheQueueKeepingTheAttempt) {
  TaskError error{kErrRateLimited, "429", true, "HTTP_429"};
  Task task = ToRetry(Submitting(), error, kNow + absl::Seconds(30));
  EXPECT_EQ(task.state, TaskState::kQueued);
  EXPECT_EQ(task.attempt_count, 2);
  EXPECT_EQ(task.error.code, kErrRateLimited);
  EXPECT_EQ(task.next_attempt_time, kNow + absl::Seconds(30));
  EXPECT_TRUE(task.lease_owner.empty());
}

TEST(TransitionsTest, StepRetryStaysAndCountsTheAttempt) {
  Task task = ToStepRetry(Running(), TaskError{kErrDownloadFailed, "reset", true, ""},
                          kNow + absl::Seconds(6));
  EXPECT_EQ(task.state, TaskState::kRunning);
  EXPECT_EQ(task.attempt_count, 1);
  EXPECT_EQ(task.error.code, kErrDownloadFailed);
  EXPECT_EQ(task.next_attempt_time, kNow + absl::Seconds(6));
  EXPECT_EQ(task.lease_owner, "me");
}

TEST(TransitionsTest, RequeuedGivesTheClaimedAttemptBack) {
  Task task = ToRequeued(Submitting());
  EXPECT_EQ(task.state, TaskState::kQueued);
  EXPECT_EQ(task.attempt_count, 1);
  EXPECT_TRUE(task.lease_owner.empty());
  Task first = Submitting();
  first.attempt_count = 0;
  EXPECT_EQ(ToRequeued(first).attempt_count, 0);
}

TEST(TransitionsTest, CancelledCancelsAtTheProviderOnlyWhenItMayExistThere) {
  Task queued = Submitting();
  queued.state = TaskState::kQueued;
  Task q = OnCancelled(queued, kNow);
  EXPECT_EQ(q.state, TaskState::kCancelled);
  EXPECT_FALSE(q.provider_cancel_pending);
  EXPECT_EQ(q.error.code, kErrCancelled);
  EXPECT_EQ(q.end_time, kNow);
  EXPECT_EQ(q.next_attempt_time, absl::InfinitePast());
  EXPECT_TRUE(OnCancelled(Submitting(), kNow).provider_cancel_pending);
  EXPECT_TRUE(OnCancelled(Running(), kNow).provider_cancel_pending);

  Task created = OnCreatedAfterCancel(q, "p-9");
  EXPECT_EQ(created.provider_task_id, "p-9");
  EXPECT_TRUE(created.provider_cancel_pending);
  Task again = ToProviderCancelRetry(created);
  EXPECT_EQ(again.attempt_count, created.attempt_count + 1);
  Task done = OnProviderCancelDone(again);
  EXPECT_FALSE(done.provider_cancel_pending);
  EXPECT_EQ(done.attempt_count, 0);
}

TEST(TransitionsTest, LeasedAndInterruptedCreate) {
  Task leased = ToLeased(Running(), "other", kNow + absl::Minutes(1));
  EXPECT_EQ(leased.lease_owner, "other");
  EXPECT_EQ(leased.lease_expiry, kNow + absl::Minutes(1));
  EXPECT_EQ(leased.state, TaskState::kRunning);
  Task failed = OnInterruptedCreate(Submitting(), kNow);
  EXPECT_EQ(failed.state, TaskState::kFailed);
  EXPECT_EQ(failed.error.code, kErrSubmissionAmbiguous);
  EXPECT_FALSE(failed.error.retryable);
  EXPECT_TRUE(failed.lease_owner.empty());
}


Task FailedAmbiguous() {
  Task task = OnInterruptedCreate(Submitting(), kNow);
  task.start_time = kNow - absl::Minutes(2);
  return task;
}

TEST(TransitionsTest, RetriedGoesBackToTheQueueKeepingTheTryBefore) {
  Task failed = OnFailed(Running(), TaskError{kErrProviderFailed, "boom", false, "X.1"}, kNow);
  failed.start_time = kNow - absl::Minutes(2);
  failed.output_urls = {"https://x/y.mp4"};
  absl::StatusOr<Task> retried = ToRetried(failed, RetryRequest(), kNow + absl::Minutes(1));
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->id, "t1");
  EXPECT_EQ(retried->state, TaskState::kQueued);
  EXPECT_TRUE(retried->provider_task_id.empty());
  EXPECT_TRUE(retried->error.empty());
  EXPECT_EQ(retried->attempt_count, 0);
  EXPECT_EQ(retried->start_time, absl::InfinitePast());
  EXPECT_EQ(retried->end_time, absl::InfinitePast());
  EXPECT_TRUE(retried->output_urls.empty());
  EXPECT_TRUE(retried->lease_owner.empty());
  EXPECT_EQ(retried->update_time, kNow + absl::Minutes(1));
  ASSERT_EQ(retried->attempts.size(), 1u);
  const TaskAttempt& before = retried->attempts[0];
  EXPECT_EQ(before.provider_task_id, "p-1");
  EXPECT_EQ(before.state, TaskState::kFailed);
  EXPECT_EQ(before.error.code, kErrProviderFailed);
  EXPECT_EQ(before.error.provider_code, "X.1");
  EXPECT_EQ(before.start_time, kNow - absl::Minutes(2));
  EXPECT_EQ(before.end_time, kNow);

  // A second retry appends, oldest first.
  Task again = OnCancelled(*retried, kNow + absl::Minutes(2));
  retried = ToRetried(again, RetryRequest(), kNow + absl::Minutes(3));
  ASSERT_TRUE(retried.ok()) << retried.status();
  ASSERT_EQ(retried->attempts.size(), 2u);
  EXPECT_EQ(retried->attempts[1].state, TaskState::kCancelled);
  EXPECT_EQ(retried->attempts[1].error.code, kErrCancelled);
}

TEST(TransitionsTest, RetryRefusesSucceededActiveAndPendingCancelTasks) {
  Task succeeded = Running();
  succeeded.state = TaskState::kSucceeded;
  EXPECT_EQ(ToRetried(succeeded, RetryRequest(), kNow).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(ToRetried(succeeded, RetryRequest(), kNow).status().message()),
              ::testing::HasSubstr("SUCCEEDED"));
  for (Task active : {Submitting(), Running()}) {
    absl::Status status = ToRetried(active, RetryRequest(), kNow).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("only FAILED or CANCELLED"));
  }
  Task queued = ToRequeued(Submitting());
  EXPECT_EQ(ToRetried(queued, RetryRequest(), kNow).status().code(),
            absl::StatusCode::kFailedPrecondition);
  Task cancelling = OnCancelled(Running(), kNow);  // provider cancel pending
  ASSERT_TRUE(cancelling.provider_cancel_pending);
  EXPECT_THAT(std::string(ToRetried(cancelling, RetryRequest(), kNow).status().message()),
              ::testing::HasSubstr("still being cancelled"));
  EXPECT_TRUE(ToRetried(OnProviderCancelDone(cancelling), RetryRequest(), kNow).ok());
}

TEST(TransitionsTest, AmbiguousNeedsConfirmationOrAnAdoptedTask) {
  Task ambiguous = FailedAmbiguous();
  ASSERT_EQ(ambiguous.error.code, kErrSubmissionAmbiguous);
  absl::Status refused = ToRetried(ambiguous, RetryRequest(), kNow).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("confirm_possible_duplicate"));
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("adopt_provider_task_id"));

  RetryRequest confirm;
  confirm.confirm_possible_duplicate = true;
  absl::StatusOr<Task> again = ToRetried(ambiguous, confirm, kNow);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->state, TaskState::kQueued);
  EXPECT_EQ(again->attempts.at(0).error.code, kErrSubmissionAmbiguous);
}

TEST(TransitionsTest, AdoptedFollowsTheProviderTaskAndIsNeverQueued) {
  RetryRequest adopt;
  adopt.adopt_provider_task_id = "found-at-provider";
  adopt.owner = "replica-b";
  adopt.lease_expiry = kNow + absl::Minutes(1);
  absl::StatusOr<Task> adopted = ToRetried(FailedAmbiguous(), adopt, kNow);
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  EXPECT_EQ(adopted->state, TaskState::kRunning);
  EXPECT_EQ(adopted->provider_task_id, "found-at-provider");
  EXPECT_EQ(adopted->provider_status, "ADOPTED");
  EXPECT_EQ(adopted->start_time, kNow);
  EXPECT_EQ(adopted->lease_owner, "replica-b");
  EXPECT_EQ(adopted->lease_expiry, kNow + absl::Minutes(1));
  EXPECT_TRUE(adopted->error.empty());
  ASSERT_EQ(adopted->attempts.size(), 1u);
  EXPECT_EQ(adopted->attempts[0].provider_task_id, "");
  EXPECT_EQ(CurrentTry(*adopted).provider_task_id, "found-at-provider");
}

TEST(TransitionsTest, AFollowerTakesAnOutputOrIsLetGoOrFollowsAnother) {
  Task follower;
  follower.id = "t2";
  follower.state = TaskState::kQueued;
  follower.reused_from = "t1";
  follower.provider_status = "waiting for t1 (identical)";
  follower.next_attempt_time = absl::InfiniteFuture();

  Task reused = OnReused(follower, "t0", OutputInfo{"/out/b.mp4", 10, "abc"}, kNow);
  EXPECT_EQ(reused.state, TaskState::kSucceeded);
  EXPECT_EQ(reused.reused_from, "t0");
  EXPECT_EQ(reused.output_path, "/out/b.mp4");
  EXPECT_EQ(reused.output_size_bytes, 10);
  EXPECT_EQ(reused.output_sha256, "abc");
  EXPECT_EQ(reused.provider_task_id, "");  // nothing paid for
  EXPECT_EQ(reused.provider_status, "reused t0 (identical)");
  EXPECT_EQ(reused.start_time, kNow);
  EXPECT_EQ(reused.end_time, kNow);
  EXPECT_EQ(reused.next_attempt_time, absl::InfinitePast());

  Task released = ToUnfollowed(follower);
  EXPECT_EQ(released.state, TaskState::kQueued);
  EXPECT_EQ(released.reused_from, "");
  EXPECT_EQ(released.provider_status, "");
  EXPECT_EQ(released.next_attempt_time, absl::InfinitePast());  // claimable now

  Task other = ToFollowing(follower, "t3");
  EXPECT_EQ(other.reused_from, "t3");
  EXPECT_EQ(other.provider_status, "waiting for t3 (identical)");
  EXPECT_EQ(other.next_attempt_time, absl::InfiniteFuture());

  // A cancelled follower retried is sent itself.
  Task cancelled = OnCancelled(follower, kNow);
  absl::StatusOr<Task> retried = ToRetried(cancelled, RetryRequest{}, kNow);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->reused_from, "");
  EXPECT_EQ(retried->next_attempt_time, absl::InfinitePast());
}

}  // namespace
}  // namespace videotask::engine
