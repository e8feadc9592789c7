// The real videotaskd binary, as operators and grpcurl see it: flags, health,
// reflection, SIGTERM drain, restart on the same data dir.
#include <signal.h>

#include <gmock/gmock.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "common/files.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tests/testing/daemon.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/temp_dir.h"
#include "videotask/v1/video_task_service.grpc.pb.h"

namespace videotask::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class VideotaskdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(daemon_.Start(DefaultArgs(), &error)) << error;
    Connect();
  }
  std::vector<std::string> DefaultArgs() {
    return {"--data_dir=" + tmp_.path() + "/data", "--log_level=info"};
  }
  void Connect() {
    channel_ = grpc::CreateChannel(daemon_.address(), grpc::InsecureChannelCredentials());
    stub_ = v1::VideoTaskService::NewStub(channel_);
  }
  v1::Task WaitFor(const std::string& id, absl::Duration timeout = absl::Seconds(20)) {
    v1::Task task;
    absl::Time give_up = absl::Now() + timeout;
    while (absl::Now() < give_up) {
      grpc::ClientContext ctx;
      v1::WaitTaskRequest wait;
      wait.set_id(id);
      wait.mutable_timeout()->set_seconds(5);
      if (!stub_->WaitTask(&ctx, wait, &task).ok()) break;
      if (task.state() >= v1::SUCCEEDED) break;
    }
    return task;
  }

  TempDir tmp_;
  Daemon daemon_{VT_VIDEOTASKD_PATH, tmp_.path()};
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VideoTaskService::Stub> stub_;
};

TEST_F(VideotaskdTest, HealthIsServing) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (const char* service : {"", "videotask.v1.VideoTaskService"}) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = health->Check(&ctx, request, &response);
    ASSERT_TRUE(status.ok()) << service << ": " << status.error_message();
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
}

TEST_F(VideotaskdTest, ReflectionDescribesTheService) {
  auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(channel_);
  grpc::ClientContext ctx;
  auto stream = reflection->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionRequest request;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::vector<std::string> services;
  for (const auto& s : response.list_services_response().service()) services.push_back(s.name());
  EXPECT_THAT(services, ::testing::Contains("videotask.v1.VideoTaskService"));

  request.set_file_containing_symbol("videotask.v1.VideoTaskService");
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_GT(response.file_descriptor_response().file_descriptor_proto_size(), 0);
  google::protobuf::FileDescriptorProto file;
  ASSERT_TRUE(file.ParseFromString(response.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(file.name(), "videotask/v1/video_task_service.proto");
  std::vector<std::string> methods;
  for (const auto& m : file.service(0).method()) methods.push_back(m.name());
  EXPECT_THAT(methods, ::testing::IsSupersetOf({"SubmitTask", "BatchSubmitTasks", "GetTask",
                                                "ListTasks", "CancelTask", "WatchTask", "WaitTask",
                                                "ReadTaskOutput", "ListBackends"}));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(VideotaskdTest, SigtermDrainsAndARestartFinishesTheWork) {
  v1::SubmitTaskRequest quick;
  quick.mutable_spec()->mutable_image()->set_content(TinyPng(1));
  quick.mutable_spec()->mutable_image()->set_filename("quick_01.png");
  v1::SubmitTaskRequest slow = quick;
  slow.mutable_spec()->mutable_image()->set_content(TinyPng(2));
  slow.mutable_spec()->mutable_image()->set_filename("slow_draft.png");
  (*slow.mutable_spec()->mutable_labels())["mock.latency_ms"] = "1500";
  v1::Task a, b;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->SubmitTask(&ctx, quick, &a).ok());
  }
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->SubmitTask(&ctx, slow, &b).ok());
  }
  EXPECT_EQ(WaitFor(a.id()).state(), v1::SUCCEEDED);

  // A watcher open during shutdown must not hold the server up.
  grpc::ClientContext watch_ctx;
  v1::WatchTaskRequest watch;
  watch.set_id(b.id());
  auto watcher = stub_->WatchTask(&watch_ctx, watch);
  v1::Task seen;
  ASSERT_TRUE(watcher->Read(&seen));

  std::thread reader([&] {
    while (watcher->Read(&seen)) {
    }
  });
  absl::Time sent = absl::Now();
  daemon_.Signal(SIGTERM);
  EXPECT_EQ(daemon_.Wait(absl::Seconds(20)), 0) << daemon_.Log();
  // Well under --shutdown_grace (30 s): open streams do not hold it up.
  EXPECT_LT(absl::Now() - sent, absl::Seconds(10)) << daemon_.Log();
  reader.join();
  EXPECT_EQ(watcher->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(daemon_.Log(), HasSubstr("draining"));

  std::string error;
  ASSERT_TRUE(daemon_.Start(DefaultArgs(), &error)) << error;
  Connect();
  v1::Task done = WaitFor(b.id());
  EXPECT_EQ(done.state(), v1::SUCCEEDED) << done.error().message();
  EXPECT_EQ(done.target_filename_stub(), "slow_video");
  grpc::ClientContext ctx;
  v1::GetTaskRequest get;
  get.set_id(a.id());
  v1::Task again;
  ASSERT_TRUE(stub_->GetTask(&ctx, get, &again).ok());
  EXPECT_EQ(again.state(), v1::SUCCEEDED);
}

TEST(VideotaskdFlagsTest, BadFlagsFailClearly) {
  TempDir tmp;
  Daemon bad_backend(VT_VIDEOTASKD_PATH, tmp.path());
  EXPECT_EQ(bad_backend.RunToExit({"--backends=sora", "--data_dir=" + tmp.path() + "/d"}), 2);
  EXPECT_THAT(bad_backend.Log(), HasSubstr("--backends names \"sora\""));

  Daemon bad_checkpoint(VT_VIDEOTASKD_PATH, tmp.path());
  EXPECT_EQ(bad_checkpoint.RunToExit(
                {"--sqlite_wal_checkpoint_pages=0", "--data_dir=" + tmp.path() + "/d"}),
            2);
  EXPECT_THAT(bad_checkpoint.Log(), HasSubstr("--sqlite_wal_checkpoint_pages must be 1..1000000"));

  Daemon no_secret(VT_VIDEOTASKD_PATH, tmp.path());
  unsetenv("RUNWAYML_API_SECRET");
  EXPECT_NE(no_secret.RunToExit({"--backends=runway", "--data_dir=" + tmp.path() + "/d"}), 0);
  EXPECT_THAT(no_secret.Log(), HasSubstr("RUNWAYML_API_SECRET"));

  Daemon fast_poll(VT_VIDEOTASKD_PATH, tmp.path());
  setenv("RUNWAYML_API_SECRET", "key_not_a_real_one_0000", 1);
  EXPECT_EQ(fast_poll.RunToExit({"--backends=runway", "--runway_poll_interval=1s",
                                 "--data_dir=" + tmp.path() + "/d"}),
            2);
  EXPECT_THAT(fast_poll.Log(), HasSubstr("at least 5s"));
  EXPECT_THAT(fast_poll.Log(), Not(HasSubstr("key_not_a_real_one_0000")));
  unsetenv("RUNWAYML_API_SECRET");
}

// --sqlite_wal_checkpoint_pages reaches the store: checkpointed after every
// page, the log restarts at each commit and stays small (about 100 KB after
// these 150 submits); at a large interval it holds every commit's pages
// (about 11 MB).
TEST(VideotaskdFlagsTest, TheCheckpointIntervalBoundsTheLog) {
  auto log_bytes_after_submits = [](const std::string& pages) -> int64_t {
    TempDir tmp;
    Daemon daemon(VT_VIDEOTASKD_PATH, tmp.path());
    std::string error;
    if (!daemon.Start({"--data_dir=" + tmp.path() + "/data", "--backends=mock",
                       "--mock_max_concurrency=1", "--sqlite_wal_checkpoint_pages=" + pages},
                      &error)) {
      ADD_FAILURE() << error;
      return -1;
    }
    auto stub = v1::VideoTaskService::NewStub(
        grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
    for (int i = 0; i < 150; ++i) {  // one at a time: a commit each
      v1::SubmitTaskRequest submit;
      submit.mutable_spec()->mutable_image()->set_content(TinyPng(i + 1));
      (*submit.mutable_spec()->mutable_labels())["mock.latency_ms"] = "3600000";
      v1::Task task;
      grpc::ClientContext ctx;
      if (!stub->SubmitTask(&ctx, submit, &task).ok()) {
        ADD_FAILURE() << "submit " << i << " failed";
        return -1;
      }
    }
    std::error_code ec;
    auto size = std::filesystem::file_size(tmp.path() + "/data/videotask.db-wal", ec);
    return ec ? -1 : static_cast<int64_t>(size);
  };
  int64_t every_page = log_bytes_after_submits("1");
  int64_t rarely = log_bytes_after_submits("100000");
  ASSERT_GT(every_page, 0);
  EXPECT_LT(every_page, 2 * 1024 * 1024) << "log of " << every_page << " bytes";
  EXPECT_GT(rarely, 4 * every_page) << rarely << " against " << every_page;
}

TEST(VideotaskdFlagsTest, BadSecurityFilesStopItBeforeItTouchesTheDataDir) {
  TempDir tmp;
  std::string data_dir = tmp.path() + "/d";
  Daemon missing(VT_VIDEOTASKD_PATH, tmp.path());
  EXPECT_EQ(missing.RunToExit({"--auth_token_file=" + tmp.path() + "/no-such-file",
                               "--data_dir=" + data_dir}),
            2);
  EXPECT_THAT(missing.Log(), HasSubstr("--auth_token_file: "));

  std::string tokens = tmp.path() + "/tokens";
  WriteFileAtomically(tokens, "short-secret-1\n").IgnoreError();
  Daemon short_token(VT_VIDEOTASKD_PATH, tmp.path());
  EXPECT_EQ(short_token.RunToExit({"--auth_token_file=" + tokens, "--data_dir=" + data_dir}), 2);
  EXPECT_THAT(short_token.Log(), HasSubstr("--auth_token_file: line 1: tokens must be at least"));
  EXPECT_THAT(short_token.Log(), Not(HasSubstr("short-secret-1")));

  Daemon half_tls(VT_VIDEOTASKD_PATH, tmp.path());
  EXPECT_EQ(half_tls.RunToExit({"--tls_cert=" + tokens, "--data_dir=" + data_dir}), 2);
  EXPECT_THAT(half_tls.Log(), HasSubstr("--tls_key"));
  // Refused before the store was opened: no data dir, no database.
  EXPECT_FALSE(std::filesystem::exists(data_dir));
}

TEST(VideotaskdFlagsTest, ASecondServerOnTheSameDataDirIsRefused) {
  TempDir tmp;
  Daemon first(VT_VIDEOTASKD_PATH, tmp.path() );
  std::string error;
  ASSERT_TRUE(first.Start({"--data_dir=" + tmp.path() + "/d"}, &error)) << error;
  TempDir tmp2;
  Daemon second(VT_VIDEOTASKD_PATH, tmp2.path());
  EXPECT_EQ(second.RunToExit({"--listen=127.0.0.1:0", "--data_dir=" + tmp.path() + "/d"}), 1);
  EXPECT_THAT(second.Log(), HasSubstr("in use by another videotaskd"));
}

}  // namespace
}  // namespace videotask::testing
