// Runs the real videotaskd with the runway backend (against the loopback
// fake, with a known API secret) and bearer tokens at debug log level, makes
// good and bad calls, drives a task to the end through provider faults and a
// refused key, then greps everything the process printed: neither the API
// secret, nor a token, nor a wrongly presented token appears anywhere; in
// both log formats, with the HTTP port's /metrics asked with good and bad
// tokens too.
#include <signal.h>

#include <fstream>
#include <string>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/metrics/scrape.h"
#include "tests/testing/daemon.h"
#include "tests/testing/fake_runway_server.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/temp_dir.h"
#include "videotask/v1/video_task_service.grpc.pb.h"

namespace videotask::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "tok_live_7f3b9d1e5a2c4f6e8d0b1a3c5e7f9d2b";
constexpr char kWrongToken[] = "tok_live_7f3b9d1e5a2c4f6e8d0b1a3c5e7f9d2c";

class SecretsInLogsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SecretsInLogsTest, NoSecretOrTokenIsEverPrinted) {
  TempDir tmp;
  FakeRunwayServer fake;
  ASSERT_TRUE(fake.Start().ok());
  fake.Enqueue(FakeRoute::kCreate, FakeReply::Error(503, "overloaded"));
  fake.Enqueue(FakeRoute::kGetTask, FakeReply::Error(401, "Incorrect API key"));
  fake.Enqueue(FakeRoute::kGetTask, FakeReply::Raw(200, "{broken"));
  std::ofstream(tmp.path() + "/tokens") << "# callers\n" << kToken << "\n";
  ::setenv("RUNWAYML_API_SECRET", kFakeRunwaySecret, 1);
  Daemon daemon(VT_VIDEOTASKD_PATH, tmp.path());
  std::string error;
  bool started = daemon.Start({"--data_dir=" + tmp.path() + "/data", "--backends=runway,mock",
                               "--runway_base_url=" + fake.base_url(),
                               "--runway_poll_interval=50ms", "--runway_poll_jitter=0s",
                               "--runway_min_submit_interval=0s", "--retry_initial_backoff=20ms",
                               "--retry_max_backoff=100ms", "--auth_token_file=" + tmp.path() + "/tokens",
                               "--log_level=debug", "--log_format=" + GetParam()},
                              &error);
  ::unsetenv("RUNWAYML_API_SECRET");
  ASSERT_TRUE(started) << error;
  auto stub = v1::VideoTaskService::NewStub(
      grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
  auto call = [&](const std::string& authorization, const v1::SubmitTaskRequest& request,
                  v1::Task* task) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!authorization.empty()) ctx.AddMetadata("authorization", authorization);
    return stub->SubmitTask(&ctx, request, task);
  };
  v1::SubmitTaskRequest request;
  request.mutable_spec()->mutable_image()->set_content(TinyPng(7));
  request.mutable_spec()->mutable_image()->set_filename("secret_test.png");
  request.mutable_spec()->set_prompt_text("slow zoom");
  v1::Task task;
  EXPECT_EQ(call(absl::StrCat("Bearer ", kWrongToken), request, &task).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call(kWrongToken, request, &task).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call("", request, &task).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // An invalid request that echoes a secret-looking value back must not log it either.
  v1::SubmitTaskRequest bad = request;
  bad.mutable_spec()->set_model(kWrongToken);
  EXPECT_EQ(call(absl::StrCat("Bearer ", kToken), bad, &task).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status status = call(absl::StrCat("Bearer ", kToken), request, &task);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // Wait for the end (the 401 makes the poll fail once or the task fail:
  // either way the key was refused and must not be printed).
  v1::Task done;
  for (int i = 0; i < 100; ++i) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
    v1::WaitTaskRequest wait;
    wait.set_id(task.id());
    wait.mutable_timeout()->set_seconds(5);
    ASSERT_TRUE(stub->WaitTask(&ctx, wait, &done).ok());
    if (done.state() == v1::SUCCEEDED || done.state() == v1::FAILED) break;
  }
  EXPECT_TRUE(done.state() == v1::SUCCEEDED || done.state() == v1::FAILED);
  EXPECT_THAT(done.error().message(), Not(HasSubstr(kFakeRunwaySecret)));
  EXPECT_EQ(HttpGet(daemon.http_port(), "/metrics", kWrongToken).status, 401);
  HttpAnswer metrics = HttpGet(daemon.http_port(), "/metrics", kToken);
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, Not(HasSubstr(kFakeRunwaySecret)));
  daemon.Signal(SIGTERM);
  EXPECT_EQ(daemon.Wait(absl::Seconds(30)), 0);

  std::string log = daemon.Log();
  ASSERT_THAT(log, HasSubstr("serving on port"));  // the log is the real one
  ASSERT_THAT(log, HasSubstr("bearer token"));     // and it covers auth
  EXPECT_THAT(log, Not(HasSubstr(kFakeRunwaySecret)));
  // Any 16+ character piece of the secret or the tokens.
  for (const std::string& secret : {std::string(kFakeRunwaySecret), std::string(kToken)}) {
    for (size_t i = 0; i + 16 <= secret.size(); i += 8) {
      EXPECT_THAT(log, Not(HasSubstr(secret.substr(i, 16)))) << "piece at " << i;
    }
  }
  EXPECT_THAT(log, Not(HasSubstr("7f3b9d1e5a2c4f6e")));  // any part of either token
  EXPECT_GT(fake.create_count(), 0);
}

INSTANTIATE_TEST_SUITE_P(LogFormats, SecretsInLogsTest, ::testing::Values("text", "json"));

}  // namespace
}  // namespace videotask::testing
