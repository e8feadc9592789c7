// Webhooks through the real videotaskd binary: a loopback receiver checks
// every signature while it answers 500, the server is killed with SIGKILL
// and started again, and every event of every task arrives once, with one
// webhook-id over all its tries. Also: URLs refused at submit, an address
// refused when connecting, a bad --webhook_url refused at startup.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "tests/testing/daemon.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/webhook_receiver.h"
#include "videotask/v1/video_task_service.grpc.pb.h"

namespace videotask::testing {
namespace {

using ::testing::HasSubstr;

class WebhooksDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(receiver_.Start().ok());
    ASSERT_TRUE(WriteFileAtomically(tmp_.path() + "/webhook.secret", TestWebhookSecret()).ok());
    StartDaemon();
  }
  std::vector<std::string> Args() {
    return {"--data_dir=" + tmp_.path() + "/data",
            "--backends=mock",
            "--webhook_secret_file=" + tmp_.path() + "/webhook.secret",
            "--webhook_url=" + receiver_.url("/all?token=s3cret"),
            "--webhook_allow_hosts=127.0.0.1",
            "--webhook_retry_initial=100ms",
            "--webhook_retry_max=300ms",
            "--webhook_timeout=1s",
            "--webhook_poll_interval=50ms",
            "--log_level=info"};
  }
  void StartDaemon() {
    std::string error;
    ASSERT_TRUE(daemon_.Start(Args(), &error)) << error;
    channel_ = grpc::CreateChannel(daemon_.address(), grpc::InsecureChannelCredentials());
    stub_ = v1::VideoTaskService::NewStub(channel_);
  }
  v1::SubmitTaskRequest Request(int seed, const std::string& notify_url,
                                const std::map<std::string, std::string>& labels = {}) {
    v1::SubmitTaskRequest request;
    request.mutable_spec()->mutable_image()->set_content(TinyPng(seed));
    request.mutable_spec()->mutable_image()->set_filename(absl::StrCat("shot", seed, ".png"));
    request.mutable_spec()->set_prompt_text("slow zoom in");
    request.mutable_spec()->set_notify_url(notify_url);
    for (const auto& [k, v] : labels) (*request.mutable_spec()->mutable_labels())[k] = v;
    return request;
  }
  grpc::Status Submit(const v1::SubmitTaskRequest& request, v1::Task& task) {
    grpc::ClientContext ctx;
    return stub_->SubmitTask(&ctx, request, &task);
  }
  v1::Task Get(const std::string& id) {
    grpc::ClientContext ctx;
    v1::GetTaskRequest request;
    request.set_id(id);
    v1::Task task;
    grpc::Status status = stub_->GetTask(&ctx, request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return task;
  }
  v1::Task WaitTerminal(const std::string& id) {
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    v1::Task task;
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
  WebhookReceiver receiver_{TestWebhookSecret()};
  Daemon daemon_{VT_VIDEOTASKD_PATH, tmp_.path()};
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VideoTaskService::Stub> stub_;
};

// (task id, event type, path) of one expected event.
using EventKey = std::tuple<std::string, std::string, std::string>;

TEST_F(WebhooksDaemonTest, EveryEventArrivesOnceThroughAKill) {
  receiver_.SetScript([](const std::string&, int) { return 500; });
  std::set<EventKey> expected;
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    std::map<std::string, std::string> labels;
    if (i == 3) labels["mock.outcome"] = "fail";
    v1::SubmitTaskRequest request = Request(i, receiver_.url("/task"), labels);
    if (i % 2 == 0) request.mutable_spec()->add_notify_events("task.running");
    v1::Task task;
    grpc::Status status = Submit(request, task);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ids.push_back(task.id());
    const std::string end = i == 3 ? "task.failed" : "task.succeeded";
    for (const char* path : {"/task", "/all"}) {
      expected.insert({task.id(), end, path});
      if (i % 2 == 0) expected.insert({task.id(), "task.running", path});
    }
  }
  for (const std::string& id : ids) EXPECT_GE(WaitTerminal(id).state(), v1::SUCCEEDED);
  // Every event tried at least once (and answered 500) before the kill.
  auto seen_all = [&](const std::vector<ReceivedWebhook>& got) {
    std::set<EventKey> tried;
    for (const ReceivedWebhook& w : got) tried.insert({w.task_id, w.type, w.path});
    return std::includes(tried.begin(), tried.end(), expected.begin(), expected.end());
  };
  ASSERT_TRUE(receiver_.WaitFor(seen_all, absl::Seconds(20)));
  daemon_.Signal(SIGKILL);
  daemon_.Wait();
  const size_t before_restart = receiver_.received().size();
  receiver_.SetScript([](const std::string&, int attempt) { return attempt <= 3 ? 500 : 200; });
  StartDaemon();

  std::map<std::string, int> delivered;  // webhook-id -> 2xx answers
  auto all_delivered = [&](const std::vector<ReceivedWebhook>& got) {
    std::set<std::string> ok;
    for (const ReceivedWebhook& w : got) {
      if (w.answered == 200) ok.insert(w.id);
    }
    return ok.size() >= expected.size();
  };
  ASSERT_TRUE(receiver_.WaitFor(all_delivered, absl::Seconds(40)))
      << receiver_.received().size() << " requests";
  absl::SleepFor(absl::Milliseconds(500));  // nothing more may come

  // Every request signed; per event and URL exactly one webhook-id, over
  // all its tries and the kill, answered 200 exactly once.
  std::vector<ReceivedWebhook> got = receiver_.received();
  EXPECT_GT(got.size(), before_restart);
  std::map<EventKey, std::set<std::string>> ids_of;
  for (const ReceivedWebhook& w : got) {
    EXPECT_TRUE(w.signature_ok) << w.id << " " << w.signature;
    ids_of[{w.task_id, w.type, w.path}].insert(w.id);
    if (w.answered == 200) ++delivered[w.id];
  }
  EXPECT_EQ(ids_of.size(), expected.size());
  for (const auto& [event, webhook_ids] : ids_of) {
    EXPECT_TRUE(expected.count(event)) << std::get<0>(event) << " " << std::get<1>(event);
    ASSERT_EQ(webhook_ids.size(), 1u) << std::get<0>(event) << " " << std::get<1>(event);
    EXPECT_EQ(delivered[*webhook_ids.begin()], 1) << *webhook_ids.begin();
  }
  // Each task shows its deliveries, delivered, URLs without their query.
  for (const std::string& id : ids) {
    v1::Task task = Get(id);
    EXPECT_GE(task.deliveries_size(), 2) << id;
    for (const v1::WebhookDelivery& d : task.deliveries()) {
      EXPECT_EQ(d.state(), v1::WebhookDelivery::DELIVERED) << d.id();
      EXPECT_GE(d.attempts(), 1);
      EXPECT_EQ(d.last_status_code(), 200);
      EXPECT_THAT(d.url(), ::testing::Not(HasSubstr("s3cret")));
    }
  }
  EXPECT_THAT(daemon_.Log(), ::testing::Not(HasSubstr(TestWebhookSecret().substr(6))));
  EXPECT_THAT(daemon_.Log(), ::testing::Not(HasSubstr("s3cret")));
  EXPECT_THAT(daemon_.Log(), HasSubstr("webhooks: signed"));
}

TEST_F(WebhooksDaemonTest, DisallowedUrlsAndEventsAreRefusedAtSubmit) {
  struct Case {
    std::string url;
    std::string event;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {"http://hooks.example.com/in", "", "plain http:// is allowed only"},
           {"https://10.0.0.7/in", "", "private, loopback or link-local"},
           {"https://169.254.169.254/latest", "", "private, loopback or link-local"},
           {"https://localhost:9/in", "", "private, loopback or link-local"},
           {"ftp://hooks.example.com/in", "", "scheme"},
           {"https://hooks.example.com/in", "task.exploded", "allowed: task.running"},
       }) {
    v1::SubmitTaskRequest request = Request(9, c.url);
    if (!c.event.empty()) request.mutable_spec()->add_notify_events(c.event);
    v1::Task task;
    grpc::Status status = Submit(request, task);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.url;
    EXPECT_THAT(status.error_message(),
                HasSubstr(c.event.empty() ? "spec.notify_url" : "spec.notify_events"));
    EXPECT_THAT(status.error_message(), HasSubstr(c.says)) << c.url;
  }
}

TEST_F(WebhooksDaemonTest, ANameResolvingToLoopbackIsRefusedWhenConnecting) {
  // https:// to a name passes the submit rule; the name resolves to a
  // loopback address, which only a listed host may reach.
  const std::string name = LoopbackName();
  if (name.empty()) GTEST_SKIP() << "this machine's name does not resolve to loopback";
  const std::string url = absl::StrCat("https://", name, ":", receiver_.port(), "/rebind");
  v1::Task task;
  grpc::Status status = Submit(Request(11, url), task);
  ASSERT_TRUE(status.ok()) << status.error_message();
  WaitTerminal(task.id());
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  v1::WebhookDelivery rebind;
  while (absl::Now() < give_up && rebind.attempts() == 0) {
    const v1::Task now = Get(task.id());
    for (const v1::WebhookDelivery& d : now.deliveries()) {
      if (absl::StrContains(d.url(), "/rebind")) rebind = d;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(rebind.state(), v1::WebhookDelivery::PENDING);
  EXPECT_THAT(rebind.last_error(), HasSubstr(absl::StrCat("of host ", name, " is not allowed")));
  for (const ReceivedWebhook& w : receiver_.received()) EXPECT_NE(w.path, "/rebind");
}

TEST_F(WebhooksDaemonTest, ABadWebhookUrlStopsTheStart) {
  daemon_.Signal(SIGTERM);
  daemon_.Wait();
  std::vector<std::string> args = Args();
  args.push_back("--webhook_url=http://hooks.example.com/in");
  Daemon second(VT_VIDEOTASKD_PATH, tmp_.path() + "/second");
  ASSERT_TRUE(MakeDirs(tmp_.path() + "/second").ok());
  EXPECT_NE(second.RunToExit(args), 0);
  EXPECT_THAT(second.Log(), HasSubstr("--webhook_url http://hooks.example.com/in is not allowed"));
}

}  // namespace
}  // namespace videotask::testing
