// Many concurrent WatchTask streams are served without a thread each, and
// readers that never read do not hold the engine back.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "tests/testing/server_fixture.h"

namespace videotask::testing {
namespace {

// One WatchTask stream read with the callback client API.
class Watcher final : public grpc::ClientReadReactor<v1::Task> {
 public:
  Watcher(v1::VideoTaskService::Stub* stub, const std::string& id, std::atomic<int>* terminal,
          std::atomic<int>* done)
      : terminal_(terminal), done_(done) {
    request_.set_id(id);
    stub->async()->WatchTask(&ctx_, &request_, this);
    StartRead(&task_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (task_.state() == v1::SUCCEEDED) ++*terminal_;
    StartRead(&task_);
  }
  void OnDone(const grpc::Status& status) override {
    status_ = status;
    ++*done_;
  }
  grpc::Status status_;

 private:
  grpc::ClientContext ctx_;
  v1::WatchTaskRequest request_;
  v1::Task task_;
  std::atomic<int>* terminal_;
  std::atomic<int>* done_;
};

class WatchScaleTest : public ServerTest {};

TEST_F(WatchScaleTest, TenThousandWatchersSeeTheEnd) {
  constexpr int kWatchers = 10000;
  v1::SubmitTaskRequest request = PngRequest("crowd.png");
  (*request.mutable_spec()->mutable_labels())["mock.latency_ms"] = "1500";
  (*request.mutable_spec()->mutable_labels())["mock.progress_steps"] = "5";
  v1::Task task;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->SubmitTask(&ctx, request, &task).ok());
  }
  // A reader that never reads: opened with the blocking API and left alone.
  grpc::ClientContext idle_ctx;
  v1::WatchTaskRequest idle_request;
  idle_request.set_id(task.id());
  auto idle = stub_->WatchTask(&idle_ctx, idle_request);

  std::atomic<int> terminal{0}, done{0};
  std::vector<std::unique_ptr<Watcher>> watchers;
  watchers.reserve(kWatchers);
  for (int i = 0; i < kWatchers; ++i) {
    watchers.push_back(std::make_unique<Watcher>(stub_.get(), task.id(), &terminal, &done));
  }
  absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (done.load() < kWatchers && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_EQ(done.load(), kWatchers);
  EXPECT_EQ(terminal.load(), kWatchers);
  for (const auto& w : watchers) EXPECT_TRUE(w->status_.ok()) << w->status_.error_message();
  EXPECT_EQ(WaitTerminal(task.id()).state(), v1::SUCCEEDED);
  idle_ctx.TryCancel();
  // Every subscription is gone once the streams ended.
  give_up = absl::Now() + absl::Seconds(10);
  while (app_->hub().size() > 0 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(app_->hub().size(), 0);
}

}  // namespace
}  // namespace videotask::testing
