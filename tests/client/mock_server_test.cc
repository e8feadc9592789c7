// The installed-API view of videotask: libvideotask_client and the test kit
// (MockServer) against the real videotaskd, as another team's test uses them.
#include "videotask/testing/mock_server.h"

#include <sys/stat.h>

#include <chrono>
#include <string>

#include "gtest/gtest.h"
#include "videotask/client.h"

namespace videotask::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

class MockServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    server_ = MockServer::Start({}, &error);
    ASSERT_NE(server_, nullptr) << error;
  }
  std::unique_ptr<MockServer> server_;
};

TEST_F(MockServerTest, SubmitWaitAndReadTheVideo) {
  v1::SubmitTaskRequest request = MockRequest("zoom in", "shot_01_draft.png");
  MockSucceed(*request.mutable_spec(), milliseconds(200));
  v1::Task task;
  grpc::Status status = server_->client().Submit(request, &task);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(task.target_filename_stub(), "shot_video");
  status = server_->client().Wait(task.id(), seconds(20), &task);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(task.state(), v1::SUCCEEDED) << task.DebugString();

  std::string video;
  status = server_->client().ReadOutput(task.id(), &video);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(static_cast<int64_t>(video.size()), task.output_size_bytes());
  ASSERT_GT(video.size(), 8u);
  EXPECT_EQ(video.substr(4, 4), "ftyp");  // an MP4
  EXPECT_TRUE(Exists(server_->output_dir() + "/shot_video.mp4"));
}

TEST_F(MockServerTest, ScriptedFailureCarriesTheProviderCode) {
  v1::SubmitTaskRequest request = MockRequest();
  MockFail(*request.mutable_spec(), "SAFETY.INPUT.IMAGE");
  v1::Task task;
  ASSERT_TRUE(server_->client().Submit(request, &task).ok());
  ASSERT_TRUE(server_->client().Wait(task.id(), seconds(20), &task).ok());
  EXPECT_EQ(task.state(), v1::FAILED);
  EXPECT_EQ(task.error().provider_code(), "SAFETY.INPUT.IMAGE");
}

TEST_F(MockServerTest, WaitTimesOutOnASlowTask) {
  v1::SubmitTaskRequest request = MockRequest();
  MockThrottleThenSucceed(*request.mutable_spec(), seconds(60));
  v1::Task task;
  ASSERT_TRUE(server_->client().Submit(request, &task).ok());
  grpc::Status status = server_->client().Wait(task.id(), milliseconds(300), &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_FALSE(task.id().empty());
}

TEST_F(MockServerTest, StopsCleanlyAndRemovesItsDataDir) {
  const std::string dir = server_->data_dir();
  EXPECT_TRUE(Exists(dir));
  EXPECT_TRUE(server_->Stop());
  server_.reset();
  EXPECT_FALSE(Exists(dir));
}

TEST(MockServerStartTest, MissingBinaryIsReported) {
  MockServerOptions options;
  options.videotaskd = "/nonexistent/videotaskd";
  options.start_timeout = seconds(5);
  std::string error;
  EXPECT_EQ(MockServer::Start(options, &error), nullptr);
  EXPECT_NE(error.find("/nonexistent/videotaskd"), std::string::npos) << error;
}

TEST(ClientTest, TokenInClearTextToARemoteHostIsRefused) {
  ClientOptions options;
  options.target = "videotask.example.com:50051";
  options.token = "0123456789abcdef0123";
  std::string error;
  EXPECT_EQ(Client::Create(options, &error), nullptr);
  EXPECT_NE(error.find("token"), std::string::npos) << error;
  EXPECT_EQ(error.find("0123456789abcdef0123"), std::string::npos) << error;
  EXPECT_FALSE(Client::Version().empty());
}

}  // namespace
}  // namespace videotask::testing
