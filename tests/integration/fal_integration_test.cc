// The whole service with the fal backend against the loopback fake of fal's
// queue API, injecting faults: every task ends truthfully, each is queued at
// fal at most once, a cancel reaches the queue, and the videos land in the
// output folder byte for byte.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/fal/fal_backend.h"
#include "backends/http/curl_transport.h"
#include "tests/testing/fake_fal_server.h"
#include "tests/testing/server_fixture.h"

namespace videotask::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class FalIntegrationTest : public ServerTest {
 protected:
  void Configure(AppConfig& config) override {
    if (fake_.port() == 0) {
      ASSERT_TRUE(fake_.Start().ok());
    }
    backends::BackendConfig fal;
    fal.name = "fal";
    fal.max_concurrency = 2;
    fal.poll_interval = absl::Milliseconds(20);
    config.backends.insert(
        config.backends.begin(),
        backends::FalSetup(fal, {fake_.base_url(), kFakeFalKey, fake_.base_url()}));
    config.default_backend = "fal";
  }
  std::unique_ptr<backends::HttpTransport> MakeHttp() override {
    backends::CurlOptions options;
    options.total_timeout = absl::Seconds(2);
    auto curl = backends::CurlTransport::Create(options);
    EXPECT_TRUE(curl.ok()) << curl.status();
    return curl.ok() ? *std::move(curl) : nullptr;
  }

  std::string Submit(const std::string& prompt, int seed) {
    v1::SubmitTaskRequest request = PngRequest(absl::StrCat("scene_", seed, "_draft.png"), seed);
    request.mutable_spec()->set_prompt_text(prompt);
    request.mutable_spec()->set_target_filename_stub(absl::StrCat("scene", seed, "_video"));
    grpc::ClientContext ctx;
    v1::Task task;
    grpc::Status status = stub_->SubmitTask(&ctx, request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(task.spec().backend(), "fal");
    return task.id();
  }

  std::string Output(const v1::Task& task) {
    std::ifstream in(task.output_path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
  }

  FakeFalServer fake_;
};

TEST_F(FalIntegrationTest, FaultsEndTruthfullyAndNothingIsQueuedTwice) {
  // Submits: refused twice (retried), then one lost answer (ambiguous).
  fake_.Enqueue(FalRoute::kSubmit, FalRequestError(429, "rate_limited", "slow down", "1"));
  fake_.Enqueue(FalRoute::kSubmit, FalRequestError(503, "runner_unavailable", "no runner"));
  fake_.Enqueue(FalRoute::kStatus, FalRequestError(502, "runner_connection_error", "gateway"));
  fake_.Enqueue(FalRoute::kStatus, FakeReply::Raw(202, "{not json"));
  fake_.Enqueue(FalRoute::kResult, FalRequestError(504, "request_timeout", "slow result"));
  fake_.Enqueue(FalRoute::kFile, FakeReply::Raw(503, "busy"));

  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(Submit(absl::StrCat("scene ", i), i));
  for (int i = 0; i < 4; ++i) {
    v1::Task task = WaitTerminal(ids[i]);
    ASSERT_EQ(task.state(), v1::SUCCEEDED) << task.error().code() << ": " << task.error().message();
    EXPECT_TRUE(absl::StartsWith(task.provider_task_id(), "fal-ai/kling-video:"));
    EXPECT_EQ(Output(task), fake_.output());
    EXPECT_EQ(fake_.queued_with_prompt(absl::StrCat("scene ", i)), 1);
  }
  EXPECT_EQ(fake_.request_count(FalRoute::kSubmit), 6);  // 2 refused + 4 queued

  fake_.Enqueue(FalRoute::kSubmit, FakeReply::Close());
  v1::Task lost = WaitTerminal(Submit("lost answer", 10));
  EXPECT_EQ(lost.state(), v1::FAILED);
  EXPECT_EQ(lost.error().code(), "SUBMISSION_AMBIGUOUS");
  EXPECT_EQ(fake_.request_count(FalRoute::kSubmit), 7);  // never sent again
  EXPECT_EQ(fake_.queued_with_prompt("lost answer"), 1);
  EXPECT_THAT(fake_.violations(), IsEmpty());
}

TEST_F(FalIntegrationTest, FailedRunIsFailedWithTheProvidersCode) {
  fake_.SetSteps({{"IN_QUEUE", 1}, {"IN_PROGRESS"}, {"COMPLETED"}});
  fake_.SetResult(
      FalModelError(422, "content_policy_violation", "The image was flagged.", "image_url"));
  v1::Task failed = WaitTerminal(Submit("flagged", 1));
  EXPECT_EQ(failed.state(), v1::FAILED);
  EXPECT_EQ(failed.error().code(), "PROVIDER_FAILED");
  EXPECT_EQ(failed.error().provider_code(), "content_policy_violation");
  EXPECT_THAT(failed.error().message(), HasSubstr("The image was flagged."));
  EXPECT_FALSE(failed.error().retryable());
  EXPECT_EQ(fake_.queued_with_prompt("flagged"), 1);
  EXPECT_THAT(fake_.violations(), IsEmpty());
}

TEST_F(FalIntegrationTest, CancelReachesTheQueue) {
  fake_.SetSteps({{"IN_QUEUE", 4}});
  const std::string id = Submit("to cancel", 2);
  v1::Task task;
  for (absl::Time give_up = absl::Now() + absl::Seconds(20); absl::Now() < give_up;) {
    grpc::ClientContext ctx;
    v1::GetTaskRequest get;
    get.set_id(id);
    ASSERT_TRUE(stub_->GetTask(&ctx, get, &task).ok());
    if (absl::StartsWith(task.provider_status(), "IN_QUEUE (position")) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(task.provider_status(), "IN_QUEUE (position 4)");
  grpc::ClientContext ctx;
  v1::CancelTaskRequest cancel;
  cancel.set_id(id);
  v1::Task cancelled;
  ASSERT_TRUE(stub_->CancelTask(&ctx, cancel, &cancelled).ok());
  EXPECT_EQ(WaitTerminal(id).state(), v1::CANCELLED);
  for (absl::Time give_up = absl::Now() + absl::Seconds(20);
       fake_.cancelled_ids().empty() && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_THAT(fake_.cancelled_ids(), SizeIs(1));
  EXPECT_EQ(absl::StrCat("fal-ai/kling-video:", fake_.cancelled_ids()[0]), task.provider_task_id());
  EXPECT_THAT(fake_.violations(), IsEmpty());
}

}  // namespace
}  // namespace videotask::testing
