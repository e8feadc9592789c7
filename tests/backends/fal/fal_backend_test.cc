// FalBackend + CurlTransport against the loopback fal fake: the queue flow,
// every submit fault (retryable or ambiguous, never re-sent by the backend),
// failed runs, cancel, uploads, and a restart that polls on.
#include "backends/fal/fal_backend.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/api/errors.h"
#include "backends/http/curl_transport.h"
#include "common/clock.h"
#include "tests/testing/fake_fal_server.h"
#include "tests/testing/status_matchers.h"

namespace videotask::backends {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;
using ::videotask::testing::FakeFalServer;
using ::videotask::testing::FakeReply;
using ::videotask::testing::FalDropBeforeRead;
using ::videotask::testing::FalModelError;
using ::videotask::testing::FalRequestError;
using ::videotask::testing::FalRoute;
using ::videotask::testing::kFakeFalKey;
using ::videotask::testing::StatusIs;

class StringSink final : public OutputSink {
 public:
  absl::Status Write(absl::string_view chunk) override {
    data.append(chunk.data(), chunk.size());
    return absl::OkStatus();
  }
  std::string data;
};

std::string PngBytes(size_t size) {
  std::string bytes = "\x89PNG\r\n\x1a\n";
  for (size_t i = bytes.size(); i < size; ++i) bytes.push_back(static_cast<char>((i * 131) % 251));
  return bytes;
}

class FalBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VT_ASSERT_OK(fake_.Start());
    CurlOptions options;
    options.connect_timeout = absl::Seconds(2);
    options.total_timeout = absl::Seconds(5);
    VT_ASSERT_OK_AND_ASSIGN(transport_, CurlTransport::Create(options));
    VT_ASSERT_OK_AND_ASSIGN(backend_, MakeBackend(fake_.base_url()));
  }

  void TearDown() override {
    EXPECT_THAT(fake_.violations(), IsEmpty());
    for (const absl::Status& status : seen_) {
      EXPECT_THAT(status.ToString(), Not(HasSubstr(kFakeFalKey)));
      EXPECT_THAT(status.ToString(), Not(HasSubstr("Key ")));
    }
  }

  absl::StatusOr<std::unique_ptr<FalBackend>> MakeBackend(const std::string& base_url) {
    BackendConfig config;
    config.name = "fal";
    config.max_output_bytes = 1 << 20;
    return FalBackend::Create(config, {base_url, kFakeFalKey, fake_.base_url()},
                              BackendDeps{clock_, rng_, transport_.get()});
  }

  StartRequest Request() const {
    StartRequest request;
    request.task_id = "t-1";
    request.model = kFalKling21Standard;
    request.image_bytes = PngBytes(2000);
    request.image_mime_type = "image/png";
    request.image_filename = "shot_draft.png";
    request.prompt_text = "slow pan across the product";
    request.ratio = "auto";
    request.duration_seconds = 5;
    return request;
  }

  absl::Status Seen(absl::Status status) {
    seen_.push_back(status);
    return status;
  }

  FakeClock clock_;
  absl::BitGen rng_;
  FakeFalServer fake_;  // declared first: outlives the transport
  std::unique_ptr<CurlTransport> transport_;
  std::unique_ptr<FalBackend> backend_;
  std::vector<absl::Status> seen_;
};

TEST_F(FalBackendTest, SubmitPollFetchHappyPath) {
  StartRequest request = Request();
  request.model_options = {{"cfg_scale", "0.7"}, {"negative_prompt", "blur"}};
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(request));
  ASSERT_THAT(fake_.queued_ids(), SizeIs(1));
  EXPECT_EQ(id, absl::StrCat("fal-ai/kling-video:", fake_.queued_ids()[0]));
  const nlohmann::json body = fake_.queued_bodies()[0];
  EXPECT_EQ(body["duration"], "5");
  EXPECT_EQ(body["cfg_scale"], 0.7);
  EXPECT_THAT(body["image_url"].get<std::string>(),
              StartsWith("data:image/png;base64,iVBORw0KGgo"));

  VT_ASSERT_OK_AND_ASSIGN(PollResult first, backend_->Poll(id));
  EXPECT_EQ(first.state, ProviderState::kPending);
  EXPECT_EQ(first.status_text, "IN_QUEUE (position 2)");
  VT_ASSERT_OK_AND_ASSIGN(PollResult second, backend_->Poll(id));
  EXPECT_EQ(second.status_text, "IN_QUEUE (position 0)");
  VT_ASSERT_OK_AND_ASSIGN(PollResult running, backend_->Poll(id));
  EXPECT_EQ(running.state, ProviderState::kRunning);
  VT_ASSERT_OK_AND_ASSIGN(PollResult done, backend_->Poll(id));
  ASSERT_EQ(done.state, ProviderState::kSucceeded);
  ASSERT_THAT(done.output_urls, SizeIs(1));

  StringSink sink;
  VT_ASSERT_OK(backend_->FetchOutput(id, done.output_urls, sink));
  EXPECT_EQ(sink.data, fake_.output());
  StringSink again;  // without URLs it asks the result again
  VT_ASSERT_OK(backend_->FetchOutput(id, {}, again));
  EXPECT_EQ(again.data, fake_.output());
}

TEST_F(FalBackendTest, RefusedSubmitsAreRetryableAndNotSent) {
  fake_.Enqueue(FalRoute::kSubmit, FalRequestError(429, "rate_limited", "too many", "3"));
  fake_.Enqueue(FalRoute::kSubmit, FalRequestError(503, "runner_unavailable", "no runner"));
  absl::Status limited = Seen(backend_->Start(Request()).status());
  EXPECT_THAT(limited, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("too many")));
  EXPECT_EQ(RetryAfter(limited), absl::Seconds(3));
  EXPECT_FALSE(MaybeSent(limited));
  absl::Status unavailable = Seen(backend_->Start(Request()).status());
  EXPECT_THAT(unavailable, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no runner")));
  EXPECT_FALSE(MaybeSent(unavailable));
  EXPECT_THAT(fake_.queued_ids(), IsEmpty());

  VT_ASSERT_OK_AND_ASSIGN(auto unreachable, MakeBackend("http://127.0.0.1:1"));
  absl::Status refused = Seen(unreachable->Start(Request()).status());
  EXPECT_TRUE(IsRetryable(refused)) << refused;
  EXPECT_FALSE(MaybeSent(refused)) << refused;
}

TEST_F(FalBackendTest, LostAnswersAreAmbiguous) {
  fake_.Enqueue(FalRoute::kSubmit, FakeReply::Close());
  fake_.Enqueue(FalRoute::kSubmit, FalDropBeforeRead());
  fake_.Enqueue(FalRoute::kSubmit, FakeReply::Raw(200, R"({"status":"IN_QUEUE"})"));
  fake_.Enqueue(FalRoute::kSubmit, FakeReply::Truncated());
  for (int i = 0; i < 4; ++i) {
    absl::Status status = Seen(backend_->Start(Request()).status());
    EXPECT_TRUE(MaybeSent(status)) << i << ": " << status;
  }
  EXPECT_EQ(fake_.request_count(FalRoute::kSubmit), 4);
}

TEST_F(FalBackendTest, FailedRunKeepsTheProvidersMessageAndCode) {
  fake_.SetSteps({{"IN_PROGRESS"}, {"COMPLETED"}});
  fake_.SetResult(FalModelError(422, "content_policy_violation", "The content was flagged."));
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(Request()));
  VT_ASSERT_OK_AND_ASSIGN(PollResult running, backend_->Poll(id));
  EXPECT_EQ(running.state, ProviderState::kRunning);
  VT_ASSERT_OK_AND_ASSIGN(PollResult failed, backend_->Poll(id));
  EXPECT_EQ(failed.state, ProviderState::kFailed);
  EXPECT_EQ(failed.failure_code, "content_policy_violation");
  EXPECT_THAT(failed.failure_message, HasSubstr("The content was flagged."));
  EXPECT_FALSE(failed.failure_retryable);
}

TEST_F(FalBackendTest, TransientPollAndResultErrors) {
  fake_.SetSteps({{"COMPLETED"}});
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(Request()));
  fake_.Enqueue(FalRoute::kStatus, FalRequestError(502, "runner_connection_error", "bad gateway"));
  fake_.Enqueue(FalRoute::kResult, FalRequestError(504, "request_timeout", "slow", "1"));
  fake_.Enqueue(FalRoute::kStatus, FakeReply::Raw(200, "{oops"));
  EXPECT_TRUE(IsRetryable(Seen(backend_->Poll(id).status())));
  EXPECT_TRUE(IsRetryable(Seen(backend_->Poll(id).status())));
  EXPECT_TRUE(IsRetryable(Seen(backend_->Poll(id).status())));
  VT_ASSERT_OK_AND_ASSIGN(PollResult done, backend_->Poll(id));
  EXPECT_EQ(done.state, ProviderState::kSucceeded);
  EXPECT_THAT(Seen(backend_->Poll("not-a-fal-id").status()),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST_F(FalBackendTest, CancelReachesTheQueueAndIsIdempotent) {
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(Request()));
  VT_ASSERT_OK(backend_->Cancel(id));
  EXPECT_THAT(fake_.cancelled_ids(), ElementsAre(fake_.queued_ids()[0]));
  VT_EXPECT_OK(backend_->Cancel(id));                               // 400 ALREADY_COMPLETED
  VT_EXPECT_OK(backend_->Cancel("fal-ai/kling-video:unknown-id"));  // 404
  fake_.Enqueue(FalRoute::kCancel, FalRequestError(503, "runner_unavailable", "busy"));
  EXPECT_TRUE(IsRetryable(Seen(backend_->Cancel(id))));
}

TEST_F(FalBackendTest, LargeImagesGoThroughTheStorageUpload) {
  StartRequest request = Request();
  request.model = kFalVeo31Fast;
  request.duration_seconds = 4;
  request.ratio = "16:9";
  request.seed = 9;
  request.image_bytes = PngBytes(kFalMaxDataUriBytes + 10);
  request.model_options = {{"generate_audio", "false"}, {"resolution", "1080p"}};
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(request));
  EXPECT_THAT(id, StartsWith("fal-ai/veo3.1:"));
  EXPECT_THAT(fake_.uploaded_files(), ElementsAre(request.image_bytes));
  const nlohmann::json body = fake_.queued_bodies()[0];
  EXPECT_THAT(body["image_url"].get<std::string>(), StartsWith("https://v3.fal.media/files/"));
  EXPECT_EQ(body["aspect_ratio"], "16:9");
  EXPECT_EQ(body["duration"], "4s");
  EXPECT_EQ(body["generate_audio"], false);

  fake_.Enqueue(FalRoute::kUploadInitiate, FalRequestError(500, "internal_error", "boom"));
  absl::Status failed = Seen(backend_->Start(request).status());
  EXPECT_TRUE(IsRetryable(failed));
  EXPECT_FALSE(MaybeSent(failed));
  EXPECT_THAT(fake_.queued_ids(), SizeIs(1));
}

TEST_F(FalBackendTest, BadRequestsAreRefusedBeforeSending) {
  StartRequest request = Request();
  request.seed = 3;  // kling takes no seed
  EXPECT_THAT(backend_->Start(request).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  request = Request();
  request.duration_seconds = 6;
  EXPECT_THAT(backend_->Start(request).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duration")));
  EXPECT_EQ(fake_.request_count(FalRoute::kSubmit), 0);
}

TEST_F(FalBackendTest, ARestartedBackendPollsOn) {
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(Request()));
  VT_ASSERT_OK_AND_ASSIGN(auto restarted, MakeBackend(fake_.base_url()));
  VT_ASSERT_OK_AND_ASSIGN(PollResult poll, restarted->Poll(id));
  EXPECT_EQ(poll.state, ProviderState::kPending);
}

TEST_F(FalBackendTest, CreateRefusesMissingKeyAndPlainRemoteUrls) {
  BackendConfig config;
  EXPECT_THAT(FalBackend::Create(config, {fake_.base_url(), "", ""},
                                 BackendDeps{clock_, rng_, transport_.get()})
                  .status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("FAL_KEY")));
  EXPECT_THAT(FalBackend::Create(config, {"http://queue.fal.run", kFakeFalKey, ""},
                                 BackendDeps{clock_, rng_, transport_.get()})
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
}

}  // namespace
}  // namespace videotask::backends
