// The example service's test, with videotask's test kit.
#include "make_video.h"

#include "gtest/gtest.h"
#include "videotask/testing/mock_server.h"

namespace {

using videotask::testing::MockServer;

TEST(MakeVideo, ReturnsTheVideo) {
  std::string error;
  auto server = MockServer::Start({}, &error);
  ASSERT_NE(server, nullptr) << error;
  std::string video;
  videotask::v1::Task task;
  grpc::Status status = MakeVideo(server->client(), videotask::testing::TinyPng(), "shot.png",
                                  "slow zoom in", std::chrono::seconds(30), &video, &task);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(static_cast<int64_t>(video.size()), task.output_size_bytes());
  EXPECT_EQ(video.substr(4, 4), "ftyp");
}

TEST(MakeVideo, ReportsAProviderFailure) {
  std::string error;
  auto server = MockServer::Start({}, &error);
  ASSERT_NE(server, nullptr) << error;
  // Script the mock through the same request the service builds.
  videotask::v1::SubmitTaskRequest request = videotask::testing::MockRequest("zoom");
  videotask::testing::MockFail(*request.mutable_spec(), "SAFETY.INPUT.IMAGE");
  videotask::v1::Task task;
  ASSERT_TRUE(server->client().Submit(request, &task).ok());
  ASSERT_TRUE(server->client().Wait(task.id(), std::chrono::seconds(30), &task).ok());
  EXPECT_EQ(task.state(), videotask::v1::FAILED);
  EXPECT_EQ(task.error().provider_code(), "SAFETY.INPUT.IMAGE");
}

}  // namespace
