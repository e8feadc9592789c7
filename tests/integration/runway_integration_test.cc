// The whole service with the runway backend against the loopback fake of the
// RunwayML API, injecting faults: every task ends truthfully, each is created
// at the provider once, and the videos land in the output folder.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/http/curl_transport.h"
#include "backends/runway/runway_backend.h"
#include "tests/testing/fake_runway_server.h"
#include "tests/testing/server_fixture.h"

namespace videotask::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

class RunwayIntegrationTest : public ServerTest {
 protected:
  void Configure(AppConfig& config) override {
    if (fake_.port() == 0) {
      ASSERT_TRUE(fake_.Start().ok());
    }
    backends::BackendConfig runway;
    runway.name = "runway";
    runway.max_concurrency = 2;
    runway.min_submit_interval = absl::Milliseconds(20);
    runway.poll_interval = absl::Milliseconds(20);
    config.backends.insert(config.backends.begin(),
                           backends::RunwaySetup(runway, {fake_.base_url(), kFakeRunwaySecret}));
    config.default_backend = "runway";
  }
  std::unique_ptr<backends::HttpTransport> MakeHttp() override {
    backends::CurlOptions options;
    options.total_timeout = absl::Seconds(2);
    auto curl = backends::CurlTransport::Create(options);
    EXPECT_TRUE(curl.ok()) << curl.status();
    return curl.ok() ? *std::move(curl) : nullptr;
  }

  FakeRunwayServer fake_;
};

TEST_F(RunwayIntegrationTest, FaultsAreRetriedAndEveryVideoIsCreatedOnce) {
  fake_.Enqueue(FakeRoute::kCreate,
                FakeReply::Error(429, "Your daily task limit has been reached.", "1"));
  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Error(503, "overloaded"));
  fake_.Enqueue(FakeRoute::kGetTask, FakeReply::Error(502, "bad gateway"));
  fake_.Enqueue(FakeRoute::kGetTask, FakeReply::Raw(200, "{not json"));
  fake_.Enqueue(FakeRoute::kOutput, FakeReply::Error(503, "busy"));

  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    v1::SubmitTaskRequest request = PngRequest(absl::StrCat("scene_", i, "_draft.png"), i);
    request.mutable_spec()->set_target_filename_stub(absl::StrCat("scene", i, "_video"));
    request.mutable_spec()->set_ratio("16:9");
    grpc::ClientContext ctx;
    v1::Task task;
    grpc::Status status = stub_->SubmitTask(&ctx, request, &task);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(task.spec().backend(), "runway");
    ids.push_back(task.id());
  }
  for (int i = 0; i < 5; ++i) {
    v1::Task task = WaitTerminal(ids[i]);
    ASSERT_EQ(task.state(), v1::SUCCEEDED) << task.error().code() << ": " << task.error().message();
    EXPECT_EQ(task.output_path(), absl::StrCat(tmp_.path(), "/outputs/scene", i, "_video.mp4"));
    std::ifstream in(task.output_path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    EXPECT_EQ(bytes.str(), fake_.output());
  }
  // Seven create requests: the 429 and the 503 were refused, five created.
  EXPECT_EQ(fake_.request_count(FakeRoute::kCreate), 7);
  EXPECT_EQ(fake_.task_ids().size(), 5u) << "a task was created at the provider more than once";
  EXPECT_THAT(fake_.violations(), IsEmpty());
  for (const auto& body : fake_.create_bodies()) {
    EXPECT_EQ(body["ratio"], "1280:720");
    EXPECT_EQ(body["model"], "gen4_turbo");
    EXPECT_EQ(body["duration"], 4);
  }
}

TEST_F(RunwayIntegrationTest, LostCreateAnswerIsAmbiguousAndNeverResent) {
  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Close());
  v1::SubmitTaskRequest request = PngRequest("lost.png");
  grpc::ClientContext ctx;
  v1::Task task;
  grpc::Status submitted = stub_->SubmitTask(&ctx, request, &task);
  ASSERT_TRUE(submitted.ok()) << submitted.error_message();
  v1::Task done = WaitTerminal(task.id());
  EXPECT_EQ(done.state(), v1::FAILED);
  EXPECT_EQ(done.error().code(), "SUBMISSION_AMBIGUOUS");
  EXPECT_THAT(done.error().message(), HasSubstr("not sent again"));
  EXPECT_EQ(fake_.request_count(FakeRoute::kCreate), 1);
}

TEST_F(RunwayIntegrationTest, ProviderRefusalAndFailureAreTruthful) {
  fake_.Enqueue(FakeRoute::kCreate, FakeReply::Error(400, "promptImage: Unsupported Content-Type"));
  grpc::ClientContext ctx;
  v1::Task refused;
  ASSERT_TRUE(stub_->SubmitTask(&ctx, PngRequest("bad.png", 1), &refused).ok());
  v1::Task r = WaitTerminal(refused.id());
  EXPECT_EQ(r.state(), v1::FAILED);
  EXPECT_EQ(r.error().code(), "PROVIDER_REJECTED");
  EXPECT_THAT(r.error().message(), HasSubstr("Unsupported Content-Type"));
  EXPECT_EQ(r.attempt_count(), 1);

  fake_.SetTaskScript({{"PENDING"}, {"THROTTLED"}, {"FAILED", -1, "The input image was flagged",
                                                    "SAFETY.INPUT.IMAGE"}});
  grpc::ClientContext ctx2;
  v1::Task failing;
  ASSERT_TRUE(stub_->SubmitTask(&ctx2, PngRequest("flagged.png", 2), &failing).ok());
  v1::Task f = WaitTerminal(failing.id());
  EXPECT_EQ(f.state(), v1::FAILED);
  EXPECT_EQ(f.error().code(), "PROVIDER_FAILED");
  EXPECT_EQ(f.error().provider_code(), "SAFETY.INPUT.IMAGE");
  EXPECT_FALSE(f.provider_task_id().empty());
  EXPECT_THAT(fake_.violations(), IsEmpty());
}

}  // namespace
}  // namespace videotask::testing
