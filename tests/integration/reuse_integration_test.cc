// Reuse of identical work through the whole service, with the runway
// backend against the loopback fake of the RunwayML API: the fake's create
// count proves that identical work is paid for once, whether the earlier
// task has finished, is still running, or runs across a restart; a failed
// original lets its follower be sent itself; what is not identical is sent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/http/curl_transport.h"
#include "backends/runway/runway_backend.h"
#include "common/files.h"
#include "tests/testing/fake_runway_server.h"
#include "tests/testing/server_fixture.h"

namespace videotask::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

class ReuseIntegrationTest : public ServerTest {
 protected:
  void Configure(AppConfig& config) override {
    if (fake_.port() == 0) {
      ASSERT_TRUE(fake_.Start().ok());
      // While `hold_` is set every task stays RUNNING at the provider; the
      // provider task `fail_` (once set) then fails.
      fake_.SetHook(FakeRoute::kGetTask, [this](const httplib::Request& req) {
        std::string id = req.path.substr(req.path.rfind('/') + 1);
        std::optional<FakeReply> reply;
        nlohmann::json body = {{"id", id}, {"createdAt", "2026-08-01T12:00:00.000Z"}};
        if (hold_) {
          body["status"] = "RUNNING";
          body["progress"] = 0.3;
          reply = FakeReply::Json(200, body);
        } else if (id == failing()) {
          body["status"] = "FAILED";
          body["failure"] = "The output was flagged";
          body["failureCode"] = "SAFETY.OUTPUT.VIDEO";
          reply = FakeReply::Json(200, body);
        }
        return reply;
      });
    }
    backends::BackendConfig runway;
    runway.name = "runway";
    runway.max_concurrency = 4;
    runway.min_submit_interval = absl::Milliseconds(1);
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

  std::string failing() {
    absl::MutexLock lock(&mu_);
    return failing_;
  }
  void FailProviderTask(const std::string& id) {
    absl::MutexLock lock(&mu_);
    failing_ = id;
  }

  // The same request every time: one image, prompt and seed.
  v1::SubmitTaskRequest Identical(const std::string& filename, bool reuse = true) {
    v1::SubmitTaskRequest request = PngRequest(filename, 3);
    request.mutable_spec()->set_seed(42);
    if (reuse) request.set_reuse(v1::REUSE_IDENTICAL);
    return request;
  }
  v1::Task Submit(const v1::SubmitTaskRequest& request) {
    grpc::ClientContext ctx;
    v1::Task task;
    grpc::Status status = stub_->SubmitTask(&ctx, request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return task;
  }
  v1::Task Get(const std::string& id) {
    grpc::ClientContext ctx;
    v1::GetTaskRequest request;
    request.set_id(id);
    v1::Task task;
    EXPECT_TRUE(stub_->GetTask(&ctx, request, &task).ok());
    return task;
  }
  // Waits until the fake has created `n` tasks (or fails at 10 s).
  void WaitForCreates(int n) {
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (fake_.create_count() < n && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
    ASSERT_EQ(fake_.create_count(), n);
  }
  // A task reused from `original`: SUCCEEDED, its own file with the same
  // bytes, digest and size, no provider task of its own.
  void ExpectReused(const v1::Task& task, const v1::Task& original) {
    EXPECT_EQ(task.state(), v1::SUCCEEDED) << task.provider_status();
    EXPECT_EQ(task.reused_from(), original.id());
    EXPECT_EQ(task.provider_task_id(), "");
    EXPECT_NE(task.output_path(), original.output_path());
    EXPECT_EQ(task.output_sha256(), original.output_sha256());
    EXPECT_EQ(task.output_size_bytes(), original.output_size_bytes());
    EXPECT_EQ(task.output_mime_type(), "video/mp4");
    EXPECT_EQ(ReadFile(task.output_path(), int64_t{1} << 30).value_or(""), fake_.output());
  }

  FakeRunwayServer fake_;
  std::atomic<bool> hold_{false};
  absl::Mutex mu_;
  std::string failing_ ABSL_GUARDED_BY(mu_);
};

TEST_F(ReuseIntegrationTest, ASucceededTaskIsReusedAtOnceWithItsOwnHardLinkedFile) {
  v1::Task original = WaitTerminal(Submit(Identical("first.png")).id());
  ASSERT_EQ(original.state(), v1::SUCCEEDED);
  EXPECT_EQ(original.reused_from(), "");
  ASSERT_EQ(fake_.create_count(), 1);

  v1::Task again = Submit(Identical("again.png"));  // another filename: still identical
  ExpectReused(again, original);
  EXPECT_THAT(again.provider_status(), HasSubstr(original.id()));
  struct stat a, b;
  ASSERT_EQ(::stat(original.output_path().c_str(), &a), 0);
  ASSERT_EQ(::stat(again.output_path().c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino) << "a hard link in the same output folder";

  // A reuse of the reused task names the task that was paid for.
  v1::Task third = Submit(Identical("third.png"));
  EXPECT_EQ(third.state(), v1::SUCCEEDED);
  EXPECT_EQ(third.reused_from(), original.id());
  EXPECT_EQ(fake_.create_count(), 1) << "identical work was paid for twice";
  EXPECT_THAT(fake_.violations(), IsEmpty());
}

TEST_F(ReuseIntegrationTest, TasksInFlightAreFollowedAndOneProviderTaskServesAll) {
  hold_ = true;
  v1::Task original = Submit(Identical("first.png"));
  WaitForCreates(1);
  v1::Task follower = Submit(Identical("second.png"));
  EXPECT_EQ(follower.state(), v1::QUEUED);
  EXPECT_EQ(follower.reused_from(), original.id());
  EXPECT_EQ(follower.provider_status(),
            absl::StrCat("waiting for ", original.id(), " (identical)"));
  EXPECT_FALSE(follower.has_next_attempt_time());
  // Identical items of one batch follow the same task.
  v1::BatchSubmitTasksRequest batch;
  *batch.add_requests() = Identical("third.png");
  *batch.add_requests() = Identical("fourth.png");
  grpc::ClientContext ctx;
  v1::BatchSubmitTasksResponse response;
  ASSERT_TRUE(stub_->BatchSubmitTasks(&ctx, batch, &response).ok());
  for (const auto& r : response.results()) EXPECT_EQ(r.task().reused_from(), original.id());

  absl::SleepFor(absl::Milliseconds(300));  // 15 poll intervals: nothing else is sent
  EXPECT_EQ(fake_.create_count(), 1);
  EXPECT_EQ(Get(follower.id()).state(), v1::QUEUED);

  hold_ = false;
  original = WaitTerminal(original.id());
  ASSERT_EQ(original.state(), v1::SUCCEEDED);
  ExpectReused(WaitTerminal(follower.id()), original);
  for (const auto& r : response.results()) ExpectReused(WaitTerminal(r.task().id()), original);
  EXPECT_EQ(fake_.create_count(), 1) << "identical work was paid for twice";
}

TEST_F(ReuseIntegrationTest, AFollowerSurvivesARestart) {
  hold_ = true;
  v1::Task original = Submit(Identical("first.png"));
  WaitForCreates(1);
  v1::Task follower = Submit(Identical("second.png"));
  ASSERT_EQ(follower.reused_from(), original.id());

  Restart();
  v1::Task after = Get(follower.id());
  EXPECT_EQ(after.state(), v1::QUEUED);
  EXPECT_EQ(after.reused_from(), original.id());
  hold_ = false;
  original = WaitTerminal(original.id());
  ASSERT_EQ(original.state(), v1::SUCCEEDED);
  ExpectReused(WaitTerminal(follower.id()), original);
  EXPECT_EQ(fake_.create_count(), 1);
}

TEST_F(ReuseIntegrationTest, AFailedOriginalLetsItsFollowersGoAndOneOfThemIsSent) {
  hold_ = true;
  v1::Task original = Submit(Identical("first.png"));
  WaitForCreates(1);
  v1::Task first = Submit(Identical("second.png"));
  v1::Task second = Submit(Identical("third.png"));
  ASSERT_EQ(second.reused_from(), original.id());
  FailProviderTask(fake_.task_ids().at(0));
  hold_ = false;

  EXPECT_EQ(WaitTerminal(original.id()).state(), v1::FAILED);
  v1::Task sent = WaitTerminal(first.id());
  ASSERT_EQ(sent.state(), v1::SUCCEEDED) << sent.error().message();
  EXPECT_EQ(sent.reused_from(), "");
  EXPECT_NE(sent.provider_task_id(), "");
  // The other follower followed the one sent: two creates in all.
  ExpectReused(WaitTerminal(second.id()), sent);
  EXPECT_EQ(fake_.create_count(), 2);
}

TEST_F(ReuseIntegrationTest, OnlyIdenticalTasksAreReused) {
  v1::Task seeded = WaitTerminal(Submit(Identical("a.png")).id());
  ASSERT_EQ(seeded.state(), v1::SUCCEEDED);
  v1::SubmitTaskRequest other_seed = Identical("b.png");
  other_seed.mutable_spec()->set_seed(43);
  v1::SubmitTaskRequest no_seed = Identical("c.png");
  no_seed.mutable_spec()->clear_seed();
  v1::SubmitTaskRequest other_prompt = Identical("d.png");
  other_prompt.mutable_spec()->set_prompt_text("orbit");
  v1::SubmitTaskRequest other_image = Identical("e.png");
  other_image.mutable_spec()->mutable_image()->set_content(TinyPng(4));
  v1::SubmitTaskRequest other_ratio = Identical("f.png");
  other_ratio.mutable_spec()->set_ratio("9:16");
  v1::SubmitTaskRequest no_reuse = Identical("g.png", /*reuse=*/false);
  for (const auto* r :
       {&other_seed, &no_seed, &other_prompt, &other_image, &other_ratio, &no_reuse}) {
    v1::Task task = WaitTerminal(Submit(*r).id());
    EXPECT_EQ(task.state(), v1::SUCCEEDED);
    EXPECT_EQ(task.reused_from(), "") << r->spec().image().filename();
  }
  EXPECT_EQ(fake_.create_count(), 7);
  // Unset in both is identical.
  v1::SubmitTaskRequest no_seed_again = Identical("h.png");
  no_seed_again.mutable_spec()->clear_seed();
  v1::Task reused = Submit(no_seed_again);
  EXPECT_EQ(reused.state(), v1::SUCCEEDED);
  EXPECT_NE(reused.reused_from(), "");
  EXPECT_EQ(fake_.create_count(), 7);
}

TEST_F(ReuseIntegrationTest, RequestIdsKeepTheirMeaningAndABadReuseIsRefused) {
  v1::SubmitTaskRequest request = Identical("a.png");
  request.set_request_id("nightly-1");
  v1::Task first = WaitTerminal(Submit(request).id());
  v1::Task same = Submit(request);
  EXPECT_EQ(same.id(), first.id());  // the same task, not a reuse of it
  EXPECT_EQ(same.reused_from(), "");

  v1::SubmitTaskRequest bad = Identical("b.png");
  bad.set_reuse(static_cast<v1::Reuse>(7));
  grpc::ClientContext ctx;
  v1::Task task;
  grpc::Status status = stub_->SubmitTask(&ctx, bad, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("reuse"));
  EXPECT_THAT(status.error_message(), HasSubstr("REUSE_IDENTICAL"));
  EXPECT_EQ(fake_.create_count(), 1);
}

}  // namespace
}  // namespace videotask::testing
