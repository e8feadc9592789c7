// ReplicateBackend + CurlTransport against the loopback Replicate fake.
#include "backends/replicate/replicate_backend.h"

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/api/errors.h"
#include "backends/http/curl_transport.h"
#include "common/clock.h"
#include "tests/testing/fake_replicate_server.h"
#include "tests/testing/status_matchers.h"

namespace videotask::backends {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;
using ::videotask::testing::FakeReplicateServer;
using ::videotask::testing::kFakeReplicateToken;
using ::videotask::testing::PredictionStep;
using ::videotask::testing::ReplicateReply;
using ::videotask::testing::ReplicateRoute;
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

class ReplicateBackendTest : public ::testing::Test {
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
    if (expect_no_violations_) {
      EXPECT_THAT(fake_.violations(), IsEmpty());
    }
    for (const absl::Status& status : seen_) {
      EXPECT_THAT(status.ToString(), Not(HasSubstr(kFakeReplicateToken)));
      EXPECT_THAT(status.ToString(), Not(HasSubstr("Bearer")));
    }
  }

  absl::StatusOr<std::unique_ptr<ReplicateBackend>> MakeBackend(
      const std::string& base_url, HttpTransport* http,
      const std::string& token = kFakeReplicateToken) {
    BackendConfig config;
    config.name = "replicate";
    config.max_output_bytes = 1 << 20;
    return ReplicateBackend::Create(config, {base_url, token}, BackendDeps{clock_, rng_, http});
  }

  StartRequest Request(const std::string& model = "kwaivgi/kling-v2.1") const {
    StartRequest request;
    request.task_id = "t-1";
    request.model = model;
    request.image_bytes = PngBytes(2000);
    request.image_mime_type = "image/png";
    request.image_filename = "shot_01_draft.png";
    request.prompt_text = "slow pan across the product";
    return request;
  }

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
  FakeReplicateServer fake_;  // declared first: outlives the transport
  std::unique_ptr<CurlTransport> transport_;
  std::unique_ptr<ReplicateBackend> backend_;
  std::vector<absl::Status> seen_;
  bool expect_no_violations_ = true;
};

TEST_F(ReplicateBackendTest, CreatePollFetchHappyPath) {
  StartRequest request = Request();
  request.model_options = {{"mode", "pro"}, {"negative_prompt", "blur"}};
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(request));
  EXPECT_THAT(fake_.prediction_ids(), ElementsAre(id));
  EXPECT_THAT(fake_.create_models(), ElementsAre("kwaivgi/kling-v2.1"));
  const nlohmann::json input = fake_.create_bodies().at(0)["input"];
  EXPECT_EQ(input["prompt"], "slow pan across the product");
  EXPECT_EQ(input["duration"], 5);
  EXPECT_EQ(input["mode"], "pro");
  EXPECT_EQ(input["negative_prompt"], "blur");
  EXPECT_THAT(input["start_image"].get<std::string>(), StartsWith("data:image/png;base64,iVBORw0KGgo"));

  VT_ASSERT_OK_AND_ASSIGN(PollResult starting, backend_->Poll(id));
  EXPECT_EQ(starting.state, ProviderState::kPending);
  EXPECT_EQ(starting.status_text, "starting");
  VT_ASSERT_OK_AND_ASSIGN(PollResult processing, backend_->Poll(id));
  EXPECT_EQ(processing.state, ProviderState::kRunning);
  VT_ASSERT_OK_AND_ASSIGN(PollResult done, backend_->Poll(id));
  EXPECT_EQ(done.state, ProviderState::kSucceeded);
  ASSERT_THAT(done.output_urls, SizeIs(1));
  StringSink sink;
  VT_ASSERT_OK(backend_->FetchOutput(id, done.output_urls, sink));
  EXPECT_EQ(sink.data, fake_.output());
  EXPECT_EQ(fake_.create_count(), 1);
}

TEST_F(ReplicateBackendTest, EveryModelPassesTheFakesValidation) {
  StartRequest hailuo = Request("minimax/hailuo-02");
  hailuo.duration_seconds = 10;
  hailuo.model_options = {{"resolution", "768p"}, {"prompt_optimizer", "false"}};
  VT_ASSERT_OK(backend_->Start(hailuo).status());
  StartRequest veo = Request("google/veo-3-fast");
  veo.ratio = "9:16";
  veo.seed = 42;
  veo.model_options = {{"generate_audio", "false"}, {"resolution", "720p"}};
  VT_ASSERT_OK(backend_->Start(veo).status());
  auto bodies = fake_.create_bodies();
  ASSERT_THAT(bodies, SizeIs(2));
  EXPECT_EQ(bodies[0]["input"]["prompt_optimizer"], false);
  EXPECT_EQ(bodies[1]["input"]["aspect_ratio"], "9:16");
  EXPECT_EQ(bodies[1]["input"]["seed"], 42);
  EXPECT_EQ(bodies[1]["input"]["duration"], 8);
}

TEST_F(ReplicateBackendTest, OutputListAndHttpsImage) {
  fake_.SetOutputAsList(true);
  fake_.SetScript({{"succeeded"}});
  StartRequest request = Request();
  request.image_bytes.clear();
  request.image_mime_type.clear();
  request.image_uri = "https://images.example.com/cat.png";
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(request));
  EXPECT_EQ(fake_.create_bodies().at(0)["input"]["start_image"],
            "https://images.example.com/cat.png");
  StringSink sink;
  VT_ASSERT_OK(backend_->FetchOutput(id, {}, sink));  // asks for the URLs itself
  EXPECT_EQ(sink.data, fake_.output());
}

TEST_F(ReplicateBackendTest, LargeImageGoesThroughTheFilesApi) {
  StartRequest request = Request();
  request.image_bytes = PngBytes(256 * 1024);
  VT_ASSERT_OK(backend_->Start(request).status());
  EXPECT_EQ(fake_.request_count(ReplicateRoute::kUploadFile), 0);
  request.image_bytes = PngBytes(256 * 1024 + 1);
  VT_ASSERT_OK(backend_->Start(request).status());
  EXPECT_EQ(fake_.request_count(ReplicateRoute::kUploadFile), 1);
  ASSERT_THAT(fake_.uploaded_files(), SizeIs(1));
  EXPECT_TRUE(fake_.uploaded_files()[0] == request.image_bytes);
  EXPECT_THAT(fake_.create_bodies().at(1)["input"]["start_image"].get<std::string>(),
              StartsWith(absl::StrCat(fake_.base_url(), "/v1/files/")));
  fake_.Enqueue(ReplicateRoute::kUploadFile, ReplicateReply::Close());
  absl::Status dropped = Seen(backend_->Start(request));
  EXPECT_THAT(dropped, StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_FALSE(MaybeSent(dropped));  // nothing billed before the create
  EXPECT_EQ(fake_.create_count(), 2);
}

TEST_F(ReplicateBackendTest, ThrottledAndServerErrorsAreRetryableNotAmbiguous) {
  fake_.Enqueue(ReplicateRoute::kCreate,
                ReplicateReply::Problem(429, "Too Many Requests",
                                        "Request was throttled. Your rate limit resets in ~30s.", "4"));
  absl::Status throttled = Seen(backend_->Start(Request()));
  EXPECT_THAT(throttled, StatusIs(absl::StatusCode::kResourceExhausted,
                                  HasSubstr("Request was throttled")));
  EXPECT_EQ(RetryAfter(throttled), absl::Seconds(4));
  EXPECT_FALSE(MaybeSent(throttled));
  for (int code : {500, 502, 503}) {
    fake_.Enqueue(ReplicateRoute::kCreate, ReplicateReply::Problem(code, "Server error", "busy"));
    absl::Status status = Seen(backend_->Start(Request()));
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("busy"))) << code;
    EXPECT_FALSE(MaybeSent(status));
  }
  EXPECT_THAT(fake_.prediction_ids(), IsEmpty());
}

TEST_F(ReplicateBackendTest, LostCreateAnswersAreAmbiguousAndSentOnce) {
  fake_.Enqueue(ReplicateRoute::kCreate, ReplicateReply::Close());
  absl::Status closed = Seen(backend_->Start(Request()));
  EXPECT_TRUE(MaybeSent(closed)) << closed;
  fake_.Enqueue(ReplicateRoute::kCreate, ReplicateReply::Truncated());
  EXPECT_TRUE(MaybeSent(Seen(backend_->Start(Request()))));
  fake_.Enqueue(ReplicateRoute::kCreate, ReplicateReply::Raw(201, "{\"id\": "));
  absl::Status garbled = Seen(backend_->Start(Request()));
  EXPECT_THAT(garbled, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("may have been created")));
  EXPECT_TRUE(MaybeSent(garbled));
  fake_.Enqueue(ReplicateRoute::kCreate, ReplicateReply::Json(201, {{"id", "a b"}, {"status", "starting"}}));
  EXPECT_TRUE(MaybeSent(Seen(backend_->Start(Request()))));
  EXPECT_EQ(fake_.create_count(), 4);
}

TEST_F(ReplicateBackendTest, ConnectionDroppedBeforeTheRequestWasReadIsAmbiguous) {
  // The client cannot tell whether the server read it: never re-sent.
  fake_.DropNextConnections(1);
  absl::Status status = Seen(backend_->Start(Request()));
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(MaybeSent(status)) << status;
  EXPECT_EQ(fake_.dropped_connections(), 1);
  EXPECT_EQ(fake_.create_count(), 0);
}

TEST_F(ReplicateBackendTest, TimeoutAfterSendingIsAmbiguous) {
  CurlOptions options;
  options.total_timeout = absl::Milliseconds(300);
  VT_ASSERT_OK_AND_ASSIGN(auto fast, CurlTransport::Create(options));
  VT_ASSERT_OK_AND_ASSIGN(auto backend, MakeBackend(fake_.base_url(), fast.get()));
  fake_.Enqueue(ReplicateRoute::kCreate, ReplicateReply::Slow(absl::Seconds(10)));
  absl::Status status = Seen(backend->Start(Request()));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kDeadlineExceeded, ::testing::_));
  EXPECT_TRUE(MaybeSent(status));
}

TEST_F(ReplicateBackendTest, ConnectRefusedIsNotSent) {
  fake_.Stop();
  absl::Status status = Seen(backend_->Start(Request()));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_FALSE(MaybeSent(status));
}

TEST_F(ReplicateBackendTest, RefusalsKeepTheProvidersWords) {
  fake_.Enqueue(ReplicateRoute::kCreate,
                ReplicateReply::Problem(402, "Insufficient credit",
                                        "You have insufficient credit to run this model."));
  absl::Status credit = Seen(backend_->Start(Request()));
  EXPECT_THAT(credit, StatusIs(absl::StatusCode::kFailedPrecondition,
                               HasSubstr("insufficient credit to run this model")));
  EXPECT_FALSE(IsRetryable(credit));
  VT_ASSERT_OK_AND_ASSIGN(auto wrong, MakeBackend(fake_.base_url(), transport_.get(), "r8_wrong"));
  EXPECT_THAT(Seen(wrong->Start(Request())),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("API token")));
  EXPECT_THAT(Seen(backend_->Poll("nosuchprediction")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("Prediction not found")));
  // What the backend refuses itself is never sent.
  StartRequest seeded = Request();
  seeded.seed = 3;
  EXPECT_THAT(Seen(backend_->Start(seeded)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("spec.seed")));
  EXPECT_EQ(fake_.create_count(), 2);
}

TEST_F(ReplicateBackendTest, FailedAbortedAndCancelled) {
  fake_.SetScript({{"processing"},
                   {"failed", "The input or output was flagged as sensitive. (E005)"}});
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(Request()));
  VT_ASSERT_OK(backend_->Poll(id).status());
  VT_ASSERT_OK_AND_ASSIGN(PollResult failed, backend_->Poll(id));
  EXPECT_EQ(failed.state, ProviderState::kFailed);
  EXPECT_EQ(failed.failure_code, "E005");
  EXPECT_FALSE(failed.failure_retryable);

  fake_.SetScript({{"aborted"}});
  VT_ASSERT_OK_AND_ASSIGN(std::string aborted_id, backend_->Start(Request()));
  VT_ASSERT_OK_AND_ASSIGN(PollResult aborted, backend_->Poll(aborted_id));
  EXPECT_EQ(aborted.state, ProviderState::kFailed);
  EXPECT_EQ(aborted.status_text, "aborted");

  fake_.SetScript({{"processing"}});
  VT_ASSERT_OK_AND_ASSIGN(std::string running, backend_->Start(Request()));
  VT_ASSERT_OK(backend_->Cancel(running));
  EXPECT_THAT(fake_.cancelled_ids(), ElementsAre(running));
  VT_ASSERT_OK_AND_ASSIGN(PollResult cancelled, backend_->Poll(running));
  EXPECT_EQ(cancelled.state, ProviderState::kCancelled);
  EXPECT_EQ(cancelled.status_text, "canceled");
  VT_EXPECT_OK(backend_->Cancel("gone"));  // 404: nothing left to cancel
  fake_.Enqueue(ReplicateRoute::kCancel, ReplicateReply::Problem(503, "Unavailable", "busy"));
  EXPECT_THAT(Seen(backend_->Cancel(running)), StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
}

TEST_F(ReplicateBackendTest, FetchAsksAgainForAnExpiredUrlAndRefusesForeignHosts) {
  fake_.SetScript({{"succeeded"}});
  VT_ASSERT_OK_AND_ASSIGN(std::string id, backend_->Start(Request()));
  VT_ASSERT_OK_AND_ASSIGN(PollResult done, backend_->Poll(id));
  fake_.Enqueue(ReplicateRoute::kOutput, ReplicateReply::Raw(404, ""));
  StringSink sink;
  VT_ASSERT_OK(backend_->FetchOutput(id, done.output_urls, sink));
  EXPECT_EQ(sink.data, fake_.output());
  EXPECT_EQ(fake_.request_count(ReplicateRoute::kOutput), 2);

  StringSink foreign;
  EXPECT_THAT(Seen(backend_->FetchOutput(id, {"https://example.com/out.mp4"}, foreign)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("replicate.delivery")));
  fake_.SetOutput(std::string((1 << 20) + 1, 'v'));
  StringSink big;
  EXPECT_THAT(Seen(backend_->FetchOutput(id, {}, big)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("max_output_bytes")));
}

TEST_F(ReplicateBackendTest, TokenNeverAppearsInStatusesOrLogs) {
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  logger->set_level(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  const std::string echo = absl::StrCat("bad token ", kFakeReplicateToken);
  fake_.Enqueue(ReplicateRoute::kCreate, ReplicateReply::Problem(422, "Invalid", echo));
  fake_.Enqueue(ReplicateRoute::kCreate, ReplicateReply::Problem(429, "Slow", echo, "1"));
  fake_.Enqueue(ReplicateRoute::kCreate, ReplicateReply::Problem(500, "Err", echo));
  fake_.Enqueue(ReplicateRoute::kCreate, ReplicateReply::Raw(201, kFakeReplicateToken));
  std::vector<absl::Status> statuses;
  for (int i = 0; i < 4; ++i) statuses.push_back(Seen(backend_->Start(Request())));
  VT_ASSERT_OK(backend_->Start(Request()).status());
  fake_.Enqueue(ReplicateRoute::kGetPrediction, ReplicateReply::Problem(404, "x", echo));
  statuses.push_back(Seen(backend_->Poll("x")));
  fake_.Enqueue(ReplicateRoute::kCancel, ReplicateReply::Problem(500, "x", echo));
  statuses.push_back(Seen(backend_->Cancel("x")));
  spdlog::set_default_logger(previous);
  for (const absl::Status& status : statuses) EXPECT_FALSE(status.ok());
  EXPECT_THAT(statuses[0].message(), HasSubstr("[redacted]"));
  EXPECT_THAT(log.str(), HasSubstr("created prediction"));  // the capture works
  EXPECT_THAT(log.str(), Not(HasSubstr(kFakeReplicateToken)));
  EXPECT_THAT(log.str(), Not(HasSubstr("base64")));
}

TEST_F(ReplicateBackendTest, CreateChecksTokenTransportAndBaseUrl) {
  EXPECT_THAT(MakeBackend(fake_.base_url(), transport_.get(), ""),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("REPLICATE_API_TOKEN")));
  EXPECT_THAT(MakeBackend(fake_.base_url(), nullptr),
              StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
  EXPECT_THAT(MakeBackend("http://api.replicate.com", transport_.get()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("loopback")));
  VT_EXPECT_OK(MakeBackend("https://api.replicate.com/", transport_.get()).status());
  BackendSetup setup = ReplicateSetup(BackendConfig(), {fake_.base_url(), kFakeReplicateToken});
  EXPECT_TRUE(setup.needs_http);
  VT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Backend> backend,
                          setup.create(setup.config, BackendDeps{clock_, rng_, transport_.get()}));
  EXPECT_EQ(backend->capabilities().default_model, "kwaivgi/kling-v2.1");
}

// The fake refuses what Replicate refuses, with Replicate's 422 shape.
TEST(FakeReplicateServerTest, RejectsUnknownInputsWith422) {
  FakeReplicateServer fake;
  VT_ASSERT_OK(fake.Start());
  VT_ASSERT_OK_AND_ASSIGN(auto transport, CurlTransport::Create());
  HttpRequest create;
  create.method = "POST";
  create.url = absl::StrCat(fake.base_url(), "/v1/models/kwaivgi/kling-v2.1/predictions");
  create.headers = {{"Authorization", absl::StrCat("Bearer ", kFakeReplicateToken)},
                    {"Content-Type", "application/json"}};
  create.body = nlohmann::json{{"input", {{"prompt", "x"}, {"start_image", "https://a.example/i.png"},
                                          {"duration", 7}, {"motion_strength", 3}}},
                               {"model", "x"}}
                    .dump();
  VT_ASSERT_OK_AND_ASSIGN(HttpResponse answer, transport->Send(create));
  EXPECT_EQ(answer.status, 422);
  nlohmann::json body = nlohmann::json::parse(answer.body);
  EXPECT_EQ(body["title"], "Input validation failed");
  EXPECT_THAT(body["detail"].get<std::string>(), HasSubstr("input.motion_strength"));
  EXPECT_THAT(body["detail"].get<std::string>(), HasSubstr("input.duration"));
  EXPECT_THAT(body["detail"].get<std::string>(), HasSubstr("Additional property model"));
  EXPECT_THAT(fake.prediction_ids(), IsEmpty());
  create.headers[0].second = "Token wrong";
  VT_ASSERT_OK_AND_ASSIGN(HttpResponse unauth, transport->Send(create));
  EXPECT_EQ(unauth.status, 401);
}

}  // namespace
}  // namespace videotask::backends
