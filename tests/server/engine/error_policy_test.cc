// One error policy: codes, retries, ambiguity; the same transient set as
// backends::IsRetryable.
#include "server/engine/error_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/api/errors.h"

namespace videotask::engine {
namespace {

using ::testing::HasSubstr;

RetryPolicy ThreeTries() {
  RetryPolicy policy;
  policy.max_attempts = 3;
  return policy;
}

TEST(ErrorPolicyTest, CodesByStatus) {
  EXPECT_EQ(ErrorFromStatus(absl::InvalidArgumentError("x"), false).code, kErrProviderRejected);
  EXPECT_EQ(ErrorFromStatus(absl::FailedPreconditionError("x"), false).code, kErrProviderRejected);
  EXPECT_EQ(ErrorFromStatus(absl::UnauthenticatedError("x"), false).code, kErrProviderAuth);
  EXPECT_EQ(ErrorFromStatus(absl::PermissionDeniedError("x"), false).code, kErrProviderAuth);
  EXPECT_EQ(ErrorFromStatus(absl::ResourceExhaustedError("x"), false).code, kErrRateLimited);
  EXPECT_EQ(ErrorFromStatus(absl::UnavailableError("x"), false).code, kErrProviderUnavailable);
  EXPECT_EQ(ErrorFromStatus(absl::DeadlineExceededError("x"), false).code, kErrProviderUnavailable);
  EXPECT_EQ(ErrorFromStatus(absl::AbortedError("x"), false).code, kErrProviderUnavailable);
  EXPECT_EQ(ErrorFromStatus(absl::NotFoundError("x"), false).code, kErrProviderNotFound);
  EXPECT_EQ(ErrorFromStatus(absl::InternalError("x"), false).code, kErrInternal);
  TaskError e = ErrorFromStatus(backends::WithHttpStatus(absl::UnavailableError("busy"), 503), true);
  EXPECT_EQ(e.message, "busy");
  EXPECT_EQ(e.provider_code, "HTTP_503");
  EXPECT_TRUE(e.retryable);
}

TEST(ErrorPolicyTest, TransientErrorsRetryWhileAttemptsRemain) {
  for (absl::Status s : {absl::UnavailableError("x"), absl::ResourceExhaustedError("x"),
                         absl::DeadlineExceededError("x"), absl::AbortedError("x")}) {
    EXPECT_TRUE(backends::IsRetryable(s)) << s;
    ErrorDecision d = DecideStepError(s, 2, ThreeTries());
    EXPECT_EQ(d.verdict, Verdict::kRetry) << s;
    EXPECT_TRUE(d.error.retryable);
    ErrorDecision last = DecideStepError(s, 3, ThreeTries());
    EXPECT_EQ(last.verdict, Verdict::kFail) << s;
    EXPECT_FALSE(last.error.retryable);
    EXPECT_THAT(last.error.message, HasSubstr("gave up after 3 attempts"));
  }
}

TEST(ErrorPolicyTest, PermanentErrorsFailAtOnce) {
  for (absl::Status s : {absl::InvalidArgumentError("x"), absl::UnauthenticatedError("x"),
                         absl::PermissionDeniedError("x"), absl::NotFoundError("x"),
                         absl::FailedPreconditionError("x"), absl::InternalError("x")}) {
    EXPECT_FALSE(backends::IsRetryable(s)) << s;
    ErrorDecision d = DecideStepError(s, 1, ThreeTries());
    EXPECT_EQ(d.verdict, Verdict::kFail) << s;
    EXPECT_EQ(d.error.message, "x");
  }
}

TEST(ErrorPolicyTest, FetchErrorsCarryTheirOwnCode) {
  EXPECT_EQ(DecideStepError(absl::UnavailableError("x"), 1, ThreeTries(), kErrDownloadFailed).error.code,
            kErrDownloadFailed);
  EXPECT_EQ(DecideStepError(absl::InternalError("x"), 1, ThreeTries(), kErrDownloadFailed).error.code,
            kErrDownloadFailed);
}

TEST(ErrorPolicyTest, ACreateThatMayHaveBeenSentIsAmbiguousEvenIfTransient) {
  absl::Status lost = backends::MarkMaybeSent(
      backends::WithHttpStatus(absl::DeadlineExceededError("timed out"), 504));
  ErrorDecision d = DecideCreateError(lost, 1, ThreeTries(), "runway");
  EXPECT_EQ(d.verdict, Verdict::kAmbiguous);
  EXPECT_EQ(d.error.code, kErrSubmissionAmbiguous);
  EXPECT_FALSE(d.error.retryable);
  EXPECT_THAT(d.error.message, HasSubstr("may have reached runway"));
  EXPECT_EQ(d.error.provider_code, "HTTP_504");
  // Refused with an answer: safe to send again.
  EXPECT_EQ(DecideCreateError(absl::UnavailableError("503"), 1, ThreeTries(), "runway").verdict,
            Verdict::kRetry);
}

TEST(ErrorPolicyTest, ProviderCancels) {
  EXPECT_TRUE(ShouldRetryProviderCancel(absl::UnavailableError("x"), 1, ThreeTries()));
  EXPECT_FALSE(ShouldRetryProviderCancel(absl::UnavailableError("x"), 3, ThreeTries()));
  EXPECT_FALSE(ShouldRetryProviderCancel(absl::NotFoundError("gone"), 1, ThreeTries()));
  EXPECT_FALSE(ShouldRetryProviderCancel(absl::OkStatus(), 1, ThreeTries()));
}

}  // namespace
}  // namespace videotask::engine
