// DeleteTask and output retention through gRPC, on a real in-process
// server (SQLite file, mock backend).
#include <sys/stat.h>

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/server_fixture.h"

namespace videotask::testing {
namespace {

using ::testing::HasSubstr;

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

class RetentionIntegrationTest : public ServerTest {
 protected:
  void Configure(AppConfig& config) override {
    config.output_retention = output_retention_;
    config.retention_interval = absl::Milliseconds(50);
  }
  v1::Task SubmitOk(int seed, const std::map<std::string, std::string>& labels = {}) {
    grpc::ClientContext ctx;
    v1::SubmitTaskRequest request = PngRequest(absl::StrCat("clip_", seed, ".png"), seed);
    for (const auto& [k, v] : labels) (*request.mutable_spec()->mutable_labels())[k] = v;
    v1::Task task;
    grpc::Status status = stub_->SubmitTask(&ctx, request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return task;
  }
  grpc::Status Delete(const std::string& id, bool delete_output) {
    grpc::ClientContext ctx;
    v1::DeleteTaskRequest request;
    request.set_id(id);
    request.set_delete_output(delete_output);
    google::protobuf::Empty empty;
    return stub_->DeleteTask(&ctx, request, &empty);
  }
  grpc::Status Get(const std::string& id, v1::Task* task) {
    grpc::ClientContext ctx;
    v1::GetTaskRequest request;
    request.set_id(id);
    return stub_->GetTask(&ctx, request, task);
  }
  grpc::Status ReadOutput(const std::string& id) {
    grpc::ClientContext ctx;
    v1::ReadTaskOutputRequest request;
    request.set_id(id);
    auto reader = stub_->ReadTaskOutput(&ctx, request);
    v1::OutputChunk chunk;
    while (reader->Read(&chunk)) {
    }
    return reader->Finish();
  }

  absl::Duration output_retention_ = absl::ZeroDuration();
};

TEST_F(RetentionIntegrationTest, DeleteTaskFollowsAip135) {
  grpc::Status bad = Delete("not an id", false);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), HasSubstr("id"));
  EXPECT_EQ(Delete("01J0Z3YV6Q8W3C2M5N7P9R1T4X", false).error_code(),
            grpc::StatusCode::NOT_FOUND);

  v1::Task running = SubmitOk(1, {{"mock.latency_ms", "600000"}});
  grpc::Status refused = Delete(running.id(), true);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(), HasSubstr("cancel it first"));

  v1::Task done = WaitTerminal(SubmitOk(2).id());
  ASSERT_EQ(done.state(), v1::SUCCEEDED);
  ASSERT_TRUE(Exists(done.output_path()));
  grpc::Status deleted = Delete(done.id(), true);
  ASSERT_TRUE(deleted.ok()) << deleted.error_message();
  EXPECT_FALSE(Exists(done.output_path()));
  v1::Task gone;
  EXPECT_EQ(Get(done.id(), &gone).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ReadOutput(done.id()).error_code(), grpc::StatusCode::NOT_FOUND);
  // Watchers arriving late get a clear end.
  grpc::ClientContext ctx;
  v1::WatchTaskRequest watch;
  watch.set_id(done.id());
  auto reader = stub_->WatchTask(&ctx, watch);
  v1::Task update;
  EXPECT_FALSE(reader->Read(&update));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);

  // Deleting survives a restart; a cancelled task can be deleted too.
  Restart();
  EXPECT_EQ(Get(done.id(), &gone).error_code(), grpc::StatusCode::NOT_FOUND);
  {
    grpc::ClientContext cancel_ctx;
    v1::CancelTaskRequest cancel;
    cancel.set_id(running.id());
    v1::Task cancelled;
    ASSERT_TRUE(stub_->CancelTask(&cancel_ctx, cancel, &cancelled).ok());
  }
  // The provider cancel of a RUNNING task finishes shortly after.
  grpc::Status last;
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (absl::Now() < give_up && !(last = Delete(running.id(), false)).ok()) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(last.ok()) << last.error_message();
}

TEST_F(RetentionIntegrationTest, OutputRetentionRemovesFilesAndReadTaskOutputSaysWhy) {
  output_retention_ = absl::Milliseconds(1);
  Restart();
  v1::Task done = WaitTerminal(SubmitOk(3).id());
  ASSERT_EQ(done.state(), v1::SUCCEEDED);
  v1::Task task;
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (absl::Now() < give_up) {
    ASSERT_TRUE(Get(done.id(), &task).ok());
    if (task.has_output_removed_time()) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(task.has_output_removed_time()) << task.DebugString();
  EXPECT_EQ(task.state(), v1::SUCCEEDED);
  EXPECT_EQ(task.output_path(), done.output_path());
  EXPECT_FALSE(Exists(done.output_path()));
  grpc::Status read = ReadOutput(done.id());
  EXPECT_EQ(read.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(read.error_message(), HasSubstr("was removed at"));
  EXPECT_THAT(read.error_message(), HasSubstr("output retention"));
}

}  // namespace
}  // namespace videotask::testing
