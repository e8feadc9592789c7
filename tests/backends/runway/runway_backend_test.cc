// RunwayBackend + CurlTransport against the loopback RunwayML fake.
#include "backends/runway/runway_backend.h"

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "backends/api/errors.h"
#include "backends/http/curl_transport.h"
#include "common/clock.h"
#include "tests/testing/fake_runway_server.h"
#include "tests/testing/status_matchers.h"

namespace videotask::backends {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;
using ::videotask::testing::FakeReply;
using ::videotask::testing::FakeRoute;
using ::videotask::testing::FakeRunwayServer;
using ::videotask::testing::FakeTaskStep;
using ::videotask::testing::IsOk;
using ::videotask::testing::kFakeRunwaySecret;
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
  bytes.reserve(size);
  for (size_t i = bytes.size(); i < size; ++i) bytes.push_back(static_cast<char>((i * 131) % 251));
  return bytes;
}

class RunwayBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VT_ASSERT_OK(fake_.Start());
    CurlOptions options;
    options.connect_timeout = absl::Seconds(2);
    options.total_timeout = absl::Seconds(10);
    VT_ASSERT_OK_AND_ASSIGN(transport_, CurlTransport::Create(options));
    VT_ASSERT_OK_AND_ASSIGN(backend_, MakeBackend(fake_.base_url(), transport_.get()));
  }

  void TearDown() override {
    EXPECT_THAT(fake_.violations(), IsEmpty());
    for (const absl::Status& status : seen_) {
      EXPECT_THAT(status.ToString(), Not(HasSubstr(kFakeRunwaySecret)));
      EXPECT_THAT(status.ToString(), Not(HasSubstr("Bearer")));
    }
  }

  absl::StatusOr<std::unique_ptr<RunwayBackend>> MakeBackend(const std::string& base_url,
                                                             HttpTransport* http) {
    BackendConfig config;
    config.name = "runway";
    config.max_output_bytes = 1 << 20;
    return RunwayBackend::Create(config, {base_url, kFakeRunwaySecret},
                                 BackendDeps{clock_, rng_, http});
  }

  StartRequest Request() const {
    StartRequest request;
    request.task_id = "t-1";
    request.model = "gen4_turbo";
    request.image_bytes = PngBytes(2000);
    request.image_mime_type = "image/png";
    request.image_filename = "elegant_business_classic_tt_draft.png";
    request.prompt_text = "slow pan across the product";
    request.ratio = "1280:720";
    request.duration_seconds = 4;
    return request;
  }

  // Every error a test sees is checked for the secret in TearDown.
  absl::Status Seen(absl::Status status) {
    seen_.push_back(status);
    return status;
  }
  template <typename T>
  absl::Status Seen(const absl::StatusOr<T>& result) {
    return Seen(result.status());
  }

  FakeClock clock_;
  absl::BitGen rng_;
  FakeRunwayServer fake_;  // declared first: outlives the transport
  std::unique_ptr<CurlTransport> transport_;
  std::unique_ptr<RunwayBackend> backend_;
  std::vector<absl::Status> seen_;
};

TEST_F(RunwayBackendTest, CreatePollFetchHappyPath) {
  StartRequest request = Request();
  request.seed = 4'000'000'000u;
  request.public_figure_threshold = "low";
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(request));
  EXPECT_THAT(fake_.task_ids(), ElementsAre(id));

  ASSERT_THAT(fake_.create_bodies(), SizeIs(1));
  const nlohmann::json body = fake_.create_bodies()[0];
  EXPECT_EQ(body["model"], "gen4_turbo");
  EXPECT_EQ(body["ratio"], "1280:720");
  EXPECT_EQ(body["duration"], 4);
  EXPECT_EQ(body["promptText"], "slow pan across the product");
  EXPECT_EQ(body["seed"], 4'000'000'000u);
  EXPECT_EQ(body["contentModeration"]["publicFigureThreshold"], "low");
  EXPECT_THAT(body["promptImage"].get<std::string>(), StartsWith("data:image/png;base64,iVBORw0KGgo"));

  VT_ASSERT_OK_AND_ASSIGN(PollResult pending, backend_->Poll(id));
  EXPECT_EQ(pending.state, ProviderState::kPending);
  EXPECT_EQ(pending.status_text, "PENDING");
  VT_ASSERT_OK_AND_ASSIGN(PollResult running, backend_->Poll(id));
  EXPECT_EQ(running.state, ProviderState::kRunning);
  EXPECT_FLOAT_EQ(running.progress, 0.5f);
  VT_ASSERT_OK_AND_ASSIGN(PollResult done, backend_->Poll(id));
  EXPECT_EQ(done.state, ProviderState::kSucceeded);
  ASSERT_THAT(done.output_urls, SizeIs(1));

  StringSink sink;
  VT_ASSERT_OK(backend_->FetchOutput(id, done.output_urls, sink));
  EXPECT_EQ(sink.data, fake_.output());
  EXPECT_EQ(fake_.create_count(), 1);
}

TEST_F(RunwayBackendTest, OmitsOptionalFieldsThatAreNotSet) {
  StartRequest request = Request();
  request.prompt_text.clear();
  VT_ASSERT_OK(backend_->Start(request).status());
  const nlohmann::json body = fake_.create_bodies().at(0);
  EXPECT_FALSE(body.contains("promptText"));
  EXPECT_FALSE(body.contains("seed"));
  EXPECT_FALSE(body.contains("contentModeration"));
  EXPECT_EQ(body.size(), 4u);  // model, promptImage, ratio, duration
}

TEST_F(RunwayBackendTest, HttpsImageUriPassesThrough) {
  StartRequest request = Request();
  request.image_bytes.clear();
  request.image_mime_type.clear();
  request.image_uri = "https://images.example.com/cat.png";
  VT_ASSERT_OK(backend_->Start(request).status());
  EXPECT_EQ(fake_.create_bodies().at(0)["promptImage"], "https://images.example.com/cat.png");
  EXPECT_EQ(fake_.request_count(FakeRoute::kCreateUpload), 0);
}

TEST_F(RunwayBackendTest, RateLimitedCreateCarriesRetryAfterAndTheProviderMessage) {
  fake_.Enqueue(FakeRoute::kCreate,
                FakeReply::Error(429, "Your daily task limit has been reached.", "7"));
  absl::Status status = Seen(backend_->Start(Request()));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kResourceExhausted,
                               HasSubstr("Your daily task limit has been reached.")));
  EXPECT_EQ(RetryAfter(status), absl::Seconds(7));
  EXPECT_EQ(HttpStatus(status), 429);
  EXPECT_FALSE(MaybeSent(status));

  FakeReply ms = FakeReply::Error(429, "slow down");
  ms.headers.emplace_back("retry-after-ms", "1500");
  fake_.Enqueue(FakeRoute::kCreate, ms);
  status = Seen(backend_->Start(Request()));
  EXPECT_EQ(RetryAfter(status), absl::Milliseconds(1500));

  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Error(429, "no hint"));
  status = Seen(backend_->Start(Request()));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kResourceExhausted, ::testing::_));
  EXPECT_FALSE(RetryAfter(status).has_value());
}

TEST_F(RunwayBackendTest, ServerErrorsOnCreateAreUnavailableAndNotAmbiguous) {
  for (int code : {500, 502, 503, 504}) {
    fake_.Enqueue(FakeRoute::kCreate, FakeReply::Error(code, "overloaded"));
    absl::Status status = Seen(backend_->Start(Request()));
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("overloaded"))) << code;
    EXPECT_EQ(HttpStatus(status), code);
    EXPECT_FALSE(MaybeSent(status)) << code;
    EXPECT_TRUE(IsRetryable(status));
  }
  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Error(503, "busy", "2"));
  EXPECT_EQ(RetryAfter(Seen(backend_->Start(Request()))), absl::Seconds(2));
}

TEST_F(RunwayBackendTest, ClientErrorsMapToPermanentCodes) {
  fake_.Enqueue(FakeRoute::kCreate,
                FakeReply::Error(400, "promptImage: Unsupported Content-Type image/gif"));
  absl::Status bad = Seen(backend_->Start(Request()));
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument,
                            HasSubstr("promptImage: Unsupported Content-Type")));
  EXPECT_EQ(HttpStatus(bad), 400);

  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Error(401, "Invalid API key"));
  absl::Status unauth = Seen(backend_->Start(Request()));
  EXPECT_THAT(unauth, StatusIs(absl::StatusCode::kUnauthenticated,
                               HasSubstr("RunwayML rejected the API key")));
  EXPECT_FALSE(IsRetryable(unauth));

  EXPECT_THAT(Seen(backend_->Poll("no-such-task")),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST_F(RunwayBackendTest, ConnectRefusedIsNotSent) {
  fake_.Stop();
  absl::Status status = Seen(backend_->Start(Request()));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_FALSE(MaybeSent(status));
}

TEST_F(RunwayBackendTest, ConnectionDroppedAfterTheCreateWasReadIsAmbiguous) {
  // A pooled connection exists (a poll), yet the create is sent once only.
  EXPECT_THAT(Seen(backend_->Poll("unknown")), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Close());
  absl::Status status = Seen(backend_->Start(Request()));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_TRUE(MaybeSent(status));
  EXPECT_EQ(fake_.create_count(), 1);
}

TEST_F(RunwayBackendTest, TruncatedCreateAnswerIsAmbiguous) {
  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Truncated());
  absl::Status status = Seen(backend_->Start(Request()));
  EXPECT_TRUE(MaybeSent(status)) << status;
  EXPECT_EQ(fake_.create_count(), 1);
}

TEST_F(RunwayBackendTest, AnswerSlowerThanTheTimeoutIsAmbiguous) {
  CurlOptions options;
  options.total_timeout = absl::Milliseconds(300);
  VT_ASSERT_OK_AND_ASSIGN(auto fast, CurlTransport::Create(options));
  VT_ASSERT_OK_AND_ASSIGN(auto backend, MakeBackend(fake_.base_url(), fast.get()));
  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Slow(absl::Seconds(10)));
  absl::Time start = absl::Now();
  absl::Status status = Seen(backend->Start(Request()));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kDeadlineExceeded, ::testing::_));
  EXPECT_TRUE(MaybeSent(status));
  EXPECT_EQ(fake_.create_count(), 1);
}

TEST_F(RunwayBackendTest, MalformedJsonOnCreateIsAmbiguousAndOnPollRetryable) {
  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Raw(200, "{\"id\": "));
  absl::Status create = Seen(backend_->Start(Request()));
  EXPECT_THAT(create, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("may have been created")));
  EXPECT_TRUE(MaybeSent(create));

  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Json(200, {{"task", "x"}}));
  EXPECT_TRUE(MaybeSent(Seen(backend_->Start(Request()))));
  // Ids no provider hands out are not trusted into logs or the store.
  for (const std::string& odd : {std::string("a b"), std::string("id\n[error] forged"),
                                 std::string(129, 'a'), std::string("\x01")}) {
    fake_.Enqueue(FakeRoute::kCreate, FakeReply::Json(200, {{"id", odd}}));
    absl::Status status = Seen(backend_->Start(Request()));
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("unreadable answer")));
    EXPECT_TRUE(MaybeSent(status));
  }

  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(Request()));
  fake_.Enqueue(FakeRoute::kGetTask, FakeReply::Raw(200, "<html>gateway</html>"));
  absl::Status poll = Seen(backend_->Poll(id));
  EXPECT_THAT(poll, StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_TRUE(IsRetryable(poll));
  fake_.Enqueue(FakeRoute::kGetTask, FakeReply::Json(200, {{"id", id}, {"status", "EXPLODED"}}));
  EXPECT_THAT(Seen(backend_->Poll(id)), StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  // The next poll is fine again.
  VT_ASSERT_OK_AND_ASSIGN(PollResult result, backend_->Poll(id));
  EXPECT_EQ(result.state, ProviderState::kPending);
}

TEST_F(RunwayBackendTest, FailedTaskCarriesFailureAndCode) {
  fake_.SetTaskScript({{"RUNNING", 0.2}, {"FAILED", -1, "Input image flagged", "SAFETY.INPUT.IMAGE"}});
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(Request()));
  VT_ASSERT_OK(backend_->Poll(id).status());
  VT_ASSERT_OK_AND_ASSIGN(PollResult failed, backend_->Poll(id));
  EXPECT_EQ(failed.state, ProviderState::kFailed);
  EXPECT_EQ(failed.failure_message, "Input image flagged");
  EXPECT_EQ(failed.failure_code, "SAFETY.INPUT.IMAGE");
  EXPECT_FALSE(failed.failure_retryable);

  fake_.SetTaskScript({{"FAILED", -1, "Internal error", "INTERNAL.BAD_OUTPUT"}});
  VT_ASSERT_OK_AND_ASSIGN(std::string id2, backend_->Start(Request()));
  VT_ASSERT_OK_AND_ASSIGN(PollResult internal, backend_->Poll(id2));
  EXPECT_EQ(internal.failure_code, "INTERNAL.BAD_OUTPUT");
  EXPECT_TRUE(internal.failure_retryable);

  fake_.SetTaskScript({{"FAILED", -1, "Something", ""}});
  VT_ASSERT_OK_AND_ASSIGN(std::string id3, backend_->Start(Request()));
  VT_ASSERT_OK_AND_ASSIGN(PollResult no_code, backend_->Poll(id3));
  EXPECT_EQ(no_code.failure_code, "");
  EXPECT_FALSE(no_code.failure_retryable);
}

TEST_F(RunwayBackendTest, ThrottledForAWhileThenRuns) {
  fake_.SetTaskScript({{"THROTTLED"}, {"THROTTLED"}, {"THROTTLED"}, {"RUNNING", 0.25},
                       {"RUNNING", 0.75}, {"SUCCEEDED"}});
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(Request()));
  std::vector<std::string> seen;
  std::vector<float> progress;
  for (int i = 0; i < 6; ++i) {
    VT_ASSERT_OK_AND_ASSIGN(PollResult r, backend_->Poll(id));
    seen.push_back(r.status_text);
    progress.push_back(r.progress);
  }
  EXPECT_THAT(seen, ElementsAre("THROTTLED", "THROTTLED", "THROTTLED", "RUNNING", "RUNNING",
                                "SUCCEEDED"));
  EXPECT_THAT(progress, ElementsAre(0, 0, 0, 0.25f, 0.75f, 1.0f));
}

TEST_F(RunwayBackendTest, CancelDeletesAndToleratesAGoneTask) {
  fake_.SetTaskScript({{"RUNNING", 0.1}});
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(Request()));
  VT_ASSERT_OK(backend_->Cancel(id));
  EXPECT_EQ(fake_.request_count(FakeRoute::kDeleteTask), 1);
  VT_ASSERT_OK_AND_ASSIGN(PollResult r, backend_->Poll(id));
  EXPECT_EQ(r.state, ProviderState::kCancelled);
  VT_EXPECT_OK(backend_->Cancel("already-gone"));  // 404 = nothing left to cancel
  fake_.Enqueue(FakeRoute::kDeleteTask, FakeReply::Error(503, "busy"));
  EXPECT_THAT(Seen(backend_->Cancel(id)), StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
}

TEST_F(RunwayBackendTest, LargeImageGoesThroughTheUploadsFlow) {
  StartRequest request = Request();
  request.image_bytes = PngBytes(6 << 20);
  VT_ASSERT_OK(backend_->Start(request).status());
  EXPECT_EQ(fake_.request_count(FakeRoute::kCreateUpload), 1);
  ASSERT_THAT(fake_.uploaded_files(), SizeIs(1));
  EXPECT_TRUE(fake_.uploaded_files()[0] == request.image_bytes);
  EXPECT_THAT(fake_.create_bodies().at(0)["promptImage"].get<std::string>(),
              StartsWith("runway://"));
}

TEST_F(RunwayBackendTest, DataUriUpToTheLimitThenUpload) {
  // 3,932,142 bytes encode to exactly 5,242,878 characters with the prefix.
  StartRequest request = Request();
  request.image_bytes = PngBytes(3'932'142);
  VT_ASSERT_OK(backend_->Start(request).status());
  EXPECT_EQ(fake_.request_count(FakeRoute::kCreateUpload), 0);
  EXPECT_LE(fake_.create_bodies().at(0)["promptImage"].get<std::string>().size(),
            static_cast<size_t>(kRunwayMaxDataUriChars));
  request.image_bytes = PngBytes(3'932'143);
  VT_ASSERT_OK(backend_->Start(request).status());
  EXPECT_EQ(fake_.request_count(FakeRoute::kCreateUpload), 1);
}

TEST_F(RunwayBackendTest, UploadFailuresAreNeverAmbiguous) {
  StartRequest request = Request();
  request.image_bytes = PngBytes(4 << 20);
  fake_.Enqueue(FakeRoute::kCreateUpload, FakeReply::Close());
  absl::Status dropped = Seen(backend_->Start(request));
  EXPECT_THAT(dropped, StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_FALSE(MaybeSent(dropped));
  fake_.Enqueue(FakeRoute::kUploadTarget, FakeReply::Raw(503, "<Error/>"));
  absl::Status target = Seen(backend_->Start(request));
  EXPECT_THAT(target, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("upload")));
  EXPECT_FALSE(MaybeSent(target));
  fake_.Enqueue(FakeRoute::kCreateUpload, FakeReply::Error(429, "upload rate limited", "3"));
  absl::Status limited = Seen(backend_->Start(request));
  EXPECT_THAT(limited, StatusIs(absl::StatusCode::kResourceExhausted, ::testing::_));
  EXPECT_EQ(RetryAfter(limited), absl::Seconds(3));
  EXPECT_EQ(fake_.create_count(), 0);
}

TEST_F(RunwayBackendTest, FetchRefreshesAnExpiredOutputUrl) {
  fake_.SetTaskScript({{"SUCCEEDED"}});
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(Request()));
  VT_ASSERT_OK_AND_ASSIGN(PollResult done, backend_->Poll(id));
  fake_.Enqueue(FakeRoute::kOutput, FakeReply::Raw(403, "<Error>AccessDenied</Error>"));
  StringSink sink;
  VT_ASSERT_OK(backend_->FetchOutput(id, done.output_urls, sink));
  EXPECT_EQ(sink.data, fake_.output());
  EXPECT_EQ(fake_.request_count(FakeRoute::kOutput), 2);
  EXPECT_EQ(fake_.request_count(FakeRoute::kGetTask), 2);  // one re-poll for a fresh URL

  StringSink from_scratch;  // no URLs known: the backend asks for them
  VT_ASSERT_OK(backend_->FetchOutput(id, {}, from_scratch));
  EXPECT_EQ(from_scratch.data, fake_.output());

  fake_.Enqueue(FakeRoute::kOutput, FakeReply::Raw(410, ""));
  fake_.Enqueue(FakeRoute::kOutput, FakeReply::Raw(410, ""));
  StringSink gone;
  absl::Status status = Seen(backend_->FetchOutput(id, done.output_urls, gone));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("410")));
  EXPECT_THAT(status.message(), Not(HasSubstr("sig=")));  // no presigned query in messages
}

TEST_F(RunwayBackendTest, FetchOfAnUnfinishedTaskIsRefused) {
  fake_.SetTaskScript({{"RUNNING", 0.3}});
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(Request()));
  StringSink sink;
  EXPECT_THAT(Seen(backend_->FetchOutput(id, {}, sink)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("RUNNING")));
}

TEST_F(RunwayBackendTest, OutputLargerThanTheCapIsRefused) {
  fake_.SetOutput(std::string((1 << 20) + 1, 'v'));
  fake_.SetTaskScript({{"SUCCEEDED"}});
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(Request()));
  StringSink sink;
  EXPECT_THAT(Seen(backend_->FetchOutput(id, {}, sink)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("max_output_bytes")));
}

TEST_F(RunwayBackendTest, SecretNeverAppearsInStatusesOrLogs) {
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  logger->set_level(spdlog::level::trace);
  spdlog::set_default_logger(logger);

  // A provider that echoes the key back must not get it into our messages.
  fake_.Enqueue(FakeRoute::kCreate,
                FakeReply::Error(400, absl::StrCat("bad key ", kFakeRunwaySecret, " used")));
  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Error(401, kFakeRunwaySecret));
  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Error(429, kFakeRunwaySecret, "1"));
  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Error(500, kFakeRunwaySecret));
  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Raw(200, kFakeRunwaySecret));
  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Close());
  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Truncated());
  std::vector<absl::Status> statuses;
  for (int i = 0; i < 7; ++i) statuses.push_back(Seen(backend_->Start(Request())));
  fake_.Enqueue(FakeRoute::kGetTask, FakeReply::Error(404, kFakeRunwaySecret));
  statuses.push_back(Seen(backend_->Poll("x")));
  fake_.Enqueue(FakeRoute::kDeleteTask, FakeReply::Error(500, kFakeRunwaySecret));
  statuses.push_back(Seen(backend_->Cancel("x")));
  StartRequest big = Request();
  big.image_bytes = PngBytes(4 << 20);
  fake_.Enqueue(FakeRoute::kCreateUpload, FakeReply::Error(400, kFakeRunwaySecret));
  statuses.push_back(Seen(backend_->Start(big)));
  StringSink sink;
  statuses.push_back(Seen(backend_->FetchOutput("missing-task", {}, sink)));

  spdlog::set_default_logger(previous);
  for (const absl::Status& status : statuses) {
    EXPECT_FALSE(status.ok());
    EXPECT_THAT(status.ToString(), Not(HasSubstr(kFakeRunwaySecret)));
  }
  EXPECT_THAT(statuses[0].message(), HasSubstr("[redacted]"));
  EXPECT_THAT(log.str(), HasSubstr("/v1/image_to_video"));  // the capture works
  EXPECT_THAT(log.str(), Not(HasSubstr(kFakeRunwaySecret)));
  EXPECT_THAT(log.str(), Not(HasSubstr("Bearer")));
  EXPECT_THAT(log.str(), Not(HasSubstr("base64")));  // no bodies in logs
}

TEST_F(RunwayBackendTest, CreateRefusesAMissingSecret) {
  absl::StatusOr<std::unique_ptr<RunwayBackend>> backend = RunwayBackend::Create(
      BackendConfig(), {fake_.base_url(), ""}, BackendDeps{clock_, rng_, transport_.get()});
  EXPECT_THAT(backend, StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("RUNWAYML_API_SECRET is not set")));
}

TEST_F(RunwayBackendTest, PlainHttpBaseUrlIsRefusedForNonLoopbackHosts) {
  EXPECT_THAT(MakeBackend("http://api.dev.runwayml.com", transport_.get()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("loopback")));
  EXPECT_THAT(MakeBackend("ftp://127.0.0.1", transport_.get()),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  VT_EXPECT_OK(MakeBackend("https://api.dev.runwayml.com", transport_.get()).status());
  VT_EXPECT_OK(MakeBackend(absl::StrCat(fake_.base_url(), "/"), transport_.get()).status());
}

TEST_F(RunwayBackendTest, SetupBuildsTheBackend) {
  BackendConfig config;
  config.name = kRunwayName;
  BackendSetup setup = RunwaySetup(config, {fake_.base_url(), kFakeRunwaySecret});
  EXPECT_TRUE(setup.needs_http);
  VT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Backend> backend,
                          setup.create(setup.config, BackendDeps{clock_, rng_, transport_.get()}));
  EXPECT_EQ(backend->capabilities().default_model, "gen4_turbo");
  VT_EXPECT_OK(backend->Start(Request()).status());
  EXPECT_THAT(setup.create(setup.config, BackendDeps{clock_, rng_, nullptr}),
              StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
}

TEST_F(RunwayBackendTest, StartSendsAResolvedRatioAndDuration) {
  StartRequest request = Request();
  request.ratio = "16:9";
  request.duration_seconds = 0;
  VT_ASSERT_OK(backend_->Start(request).status());
  EXPECT_THAT(fake_.violations(), IsEmpty());
}

}  // namespace
}  // namespace videotask::backends

namespace videotask::backends {
namespace {

// The fake's own checks catch what the provider would refuse.
TEST(FakeRunwayServerTest, RecordsViolations) {
  FakeRunwayServer fake;
  VT_ASSERT_OK(fake.Start());
  VT_ASSERT_OK_AND_ASSIGN(auto transport, CurlTransport::Create());
  HttpRequest create;
  create.method = "POST";
  create.url = absl::StrCat(fake.base_url(), "/v1/image_to_video");
  create.headers = {{"Authorization", "Bearer wrong"}, {"Content-Type", "application/json"}};
  create.body = nlohmann::json{{"model", "gen4_turbo"},
                               {"promptImage", "file:///tmp/a.png"},
                               {"ratio", "16:9"},
                               {"duration", 4},
                               {"motion_strength", 3}}
                    .dump();
  VT_ASSERT_OK(transport->Send(create).status());
  HttpRequest output;
  output.url = absl::StrCat(fake.base_url(), "/outputs/x.mp4");
  output.headers = {{"Authorization", absl::StrCat("Bearer ", kFakeRunwaySecret)}};
  VT_ASSERT_OK(transport->Send(output).status());
  std::string all = absl::StrJoin(fake.violations(), "\n");
  EXPECT_THAT(all, HasSubstr("Authorization"));
  EXPECT_THAT(all, HasSubstr("X-Runway-Version"));
  EXPECT_THAT(all, HasSubstr("unknown key \"motion_strength\""));
  EXPECT_THAT(all, HasSubstr("ratio \"16:9\""));
  EXPECT_THAT(all, HasSubstr("promptImage"));
  EXPECT_THAT(all, HasSubstr("storage URL"));
  EXPECT_THAT(all, Not(HasSubstr(kFakeRunwaySecret)));
  EXPECT_EQ(fake.create_count(), 1);
}

}  // namespace
}  // namespace videotask::backends
