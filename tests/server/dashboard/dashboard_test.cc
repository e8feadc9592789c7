// The dashboard's routes against a real server: the in-process gRPC
// service, a real SQLite file, the mock backend, and the real HTTP port on
// 127.0.0.1:0, read with a real HTTP client.
#include "server/dashboard/dashboard.h"

#include <httplib.h>

#include <memory>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/synchronization/notification.h"
#include "server/auth/auth.h"
#include "server/dashboard/retry_call.h"
#include "server/http/http_server.h"
#include "tests/testing/server_fixture.h"

namespace videotask::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using json = nlohmann::json;

constexpr char kToken[] = "dashboard-test-token-0123456789";

class DashboardTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    if (HasFatalFailure()) return;
  }
  void TearDown() override {
    StopHttp();
    ServerTest::TearDown();
  }

  void StartHttp(bool with_token) {
    http::HttpServerOptions options;
    options.listen = "127.0.0.1:0";
    options.threads = 8;
    if (with_token) {
      options.tokens = std::make_shared<const auth::TokenChecker>(std::vector<std::string>{kToken});
    }
    absl::StatusOr<std::unique_ptr<http::HttpServer>> server = http::HttpServer::Create(options);
    ASSERT_TRUE(server.ok()) << server.status();
    http_ = std::move(*server);
    dashboard::DashboardOptions d;
    d.channel = server_->InProcessChannel(grpc::ChannelArguments());
    d.store = &app_->store();
    d.clock = &clock_;
    d.event_check_interval = absl::Milliseconds(20);
    d.max_streams = max_streams_;
    d.keep_alive_interval = absl::Milliseconds(50);
    dashboard_ = std::make_unique<dashboard::Dashboard>(d);
    dashboard_->AddRoutes(*http_);
    ASSERT_TRUE(http_->Start().ok());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", http_->port());
    client_->set_read_timeout(10, 0);
    if (with_token) client_->set_bearer_token_auth(kToken);
  }
  void StopHttp() {
    if (dashboard_ != nullptr) dashboard_->Shutdown();
    if (http_ != nullptr) http_->Stop();
    client_.reset();
    http_.reset();
    dashboard_.reset();
  }

  v1::Task Submit(const std::string& filename, std::map<std::string, std::string> labels = {},
                  int seed = 0) {
    v1::SubmitTaskRequest request = PngRequest(filename, seed);
    for (const auto& [k, v] : labels) (*request.mutable_spec()->mutable_labels())[k] = v;
    request.mutable_spec()->set_prompt_text("<img src=x onerror=alert(1)>");
    grpc::ClientContext ctx;
    v1::Task task;
    grpc::Status status = stub_->SubmitTask(&ctx, request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return task;
  }

  json GetJson(const std::string& path, int want_status = 200) {
    httplib::Result res = client_->Get(path);
    if (!res) {
      ADD_FAILURE() << "no answer for " << path;
      return json();
    }
    EXPECT_EQ(res->status, want_status) << path << ": " << res->body;
    EXPECT_EQ(res->get_header_value("Content-Security-Policy"),
              dashboard::kContentSecurityPolicy);
    return json::parse(res->body, nullptr, false);
  }

  std::unique_ptr<http::HttpServer> http_;
  std::unique_ptr<dashboard::Dashboard> dashboard_;
  std::unique_ptr<httplib::Client> client_;
  int max_streams_ = 8;
};

TEST_F(DashboardTest, ServesTheEmbeddedPageWithAStrictPolicy) {
  StartHttp(false);
  httplib::Result res = client_->Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"), StartsWith("text/html"));
  EXPECT_THAT(res->body, HasSubstr("<script type=\"module\" src=\"/app.js\">"));
  EXPECT_THAT(res->get_header_value("Content-Security-Policy"), HasSubstr("default-src 'none'"));
  EXPECT_THAT(res->get_header_value("Content-Security-Policy"), HasSubstr("script-src 'self'"));
  res = client_->Get("/app.js");
  ASSERT_TRUE(res);
  EXPECT_THAT(res->get_header_value("Content-Type"), StartsWith("text/javascript"));
  EXPECT_THAT(res->body, HasSubstr("textContent"));
  EXPECT_THAT(res->body, ::testing::Not(HasSubstr("innerHTML")));
}

TEST_F(DashboardTest, ListsFiltersAndPagesThroughTheService) {
  StartHttp(false);
  v1::Task hero = Submit("product_hero_03.png", {{"batch", "a"}, {"mock.latency_ms", "600000"}}, 1);
  v1::Task other = Submit("elegant_draft.png", {{"batch", "b"}, {"mock.latency_ms", "600000"}}, 2);
  json all = GetJson("/api/tasks");
  ASSERT_EQ(all["tasks"].size(), 2u);
  EXPECT_EQ(all["tasks"][0]["id"], other.id());  // newest first
  EXPECT_EQ(all["tasks"][1]["targetFilenameStub"], "product_hero_video");
  EXPECT_EQ(all["tasks"][1]["spec"]["promptText"], "<img src=x onerror=alert(1)>");

  json by_label = GetJson("/api/tasks?label=batch%3Da");
  ASSERT_EQ(by_label["tasks"].size(), 1u);
  EXPECT_EQ(by_label["tasks"][0]["id"], hero.id());
  json by_text = GetJson("/api/tasks?q=HERO");
  ASSERT_EQ(by_text["tasks"].size(), 1u);
  EXPECT_EQ(by_text["tasks"][0]["id"], hero.id());
  json by_id = GetJson("/api/tasks?q=" + other.id());
  ASSERT_EQ(by_id["tasks"].size(), 1u);
  json none = GetJson("/api/tasks?state=SUCCEEDED");
  EXPECT_FALSE(none.contains("tasks"));

  json page1 = GetJson("/api/tasks?page_size=1");
  ASSERT_EQ(page1["tasks"].size(), 1u);
  ASSERT_TRUE(page1.contains("nextPageToken"));
  json page2 = GetJson("/api/tasks?page_size=1&page_token=" +
                       page1["nextPageToken"].get<std::string>());
  ASSERT_EQ(page2["tasks"].size(), 1u);
  EXPECT_EQ(page2["tasks"][0]["id"], hero.id());

  json bad = GetJson("/api/tasks?state=running", 400);
  EXPECT_EQ(bad["code"], "INVALID_ARGUMENT");
  EXPECT_THAT(bad["message"].get<std::string>(), HasSubstr("parameter state"));
  json missing = GetJson("/api/tasks/01J0Z3YV6Q8W3C2M5N7P9R1T4X", 404);
  EXPECT_EQ(missing["code"], "NOT_FOUND");
}

TEST_F(DashboardTest, OverviewCountsPerBackendAndState) {
  StartHttp(false);
  Submit("a.png", {{"mock.latency_ms", "600000"}}, 1);
  v1::Task failed = Submit("b.png", {{"mock.outcome", "fail"}}, 2);
  WaitTerminal(failed.id());
  json o = GetJson("/api/overview");
  ASSERT_EQ(o["backends"].size(), 1u);
  EXPECT_EQ(o["backends"][0]["name"], "mock");
  EXPECT_EQ(o["backends"][0]["counts"]["FAILED"], 1);
  EXPECT_EQ(o["backends"][0]["maxConcurrency"], 64);
}

TEST_F(DashboardTest, CancelNeedsJsonAndCancelsThroughTheService) {
  StartHttp(false);
  v1::Task task = Submit("stuck.png", {{"mock.latency_ms", "600000"}});
  const std::string path = "/api/tasks/" + task.id() + "/cancel";
  httplib::Result form = client_->Post(path, "x=1", "application/x-www-form-urlencoded");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->status, 400);
  httplib::Result res = client_->Post(path, "{}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(json::parse(res->body)["state"], "CANCELLED");
  grpc::ClientContext ctx;
  v1::GetTaskRequest get;
  get.set_id(task.id());
  v1::Task now;
  ASSERT_TRUE(stub_->GetTask(&ctx, get, &now).ok());
  EXPECT_EQ(now.state(), v1::CANCELLED);
  res = client_->Post(path, "{}", "application/json");  // already finished
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 409);
  EXPECT_EQ(json::parse(res->body)["code"], "FAILED_PRECONDITION");
}

// Retry is offered exactly when the service has RetryTask; then it goes
// through the service like any gRPC caller's.
TEST_F(DashboardTest, RetryFollowsTheServiceCapability) {
  StartHttp(false);
  const bool has_retry = dashboard::ServiceHasRetry();
  EXPECT_EQ(GetJson("/api/capabilities")["retry"], has_retry);
  v1::Task failed = WaitTerminal(Submit("retry_me.png", {{"mock.outcome", "fail"}}).id());
  ASSERT_EQ(failed.state(), v1::FAILED);
  httplib::Result res =
      client_->Post("/api/tasks/" + failed.id() + "/retry", "{}", "application/json");
  ASSERT_TRUE(res);
  if (!has_retry) {
    EXPECT_EQ(res->status, 501);
    EXPECT_EQ(json::parse(res->body)["code"], "UNIMPLEMENTED");
    return;
  }
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_NE(json::parse(res->body)["state"], "FAILED");
  grpc::ClientContext ctx;
  v1::GetTaskRequest get;
  get.set_id(failed.id());
  v1::Task now;
  ASSERT_TRUE(stub_->GetTask(&ctx, get, &now).ok());
  // Retried: the failed try is listed before the current one. (Its state
  // may already be FAILED again: the mock fails this task at once.)
  EXPECT_EQ(now.attempts_size(), failed.attempts_size() + 1);
  httplib::Result missing = client_->Post("/api/tasks/01J0Z3YV6Q8W3C2M5N7P9R1T4X/retry", "{}",
                                          "application/json");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

// The descriptor-driven call RetryTask uses, on a method every server has.
TEST_F(DashboardTest, CallsAMethodFoundByDescriptor) {
  v1::Task task = Submit("by_descriptor.png", {{"mock.latency_ms", "600000"}});
  std::shared_ptr<grpc::Channel> channel = server_->InProcessChannel(grpc::ChannelArguments());
  grpc::ClientContext ctx;
  v1::Task got;
  grpc::Status status = dashboard::CallTaskMethodById(channel, ctx, "GetTask", task.id(), got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(got.id(), task.id());
  EXPECT_EQ(got.target_filename_stub(), "by_descriptor_video");
  grpc::ClientContext ctx2;
  status = dashboard::CallTaskMethodById(channel, ctx2, "GetTask", "01J0Z3YV6Q8W3C2M5N7P9R1T4X", got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext ctx3;
  status = dashboard::CallTaskMethodById(channel, ctx3, "NoSuchMethod", task.id(), got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  grpc::ClientContext ctx4;  // a method with another shape is not called
  status = dashboard::CallTaskMethodById(channel, ctx4, "ListTasks", task.id(), got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(DashboardTest, MediaTicketsServeTheImageAndTheVideoWithRanges) {
  StartHttp(false);
  v1::Task task = WaitTerminal(Submit("clip.png", {}, 7).id());
  ASSERT_EQ(task.state(), v1::SUCCEEDED);
  httplib::Result issued = client_->Post("/api/tasks/" + task.id() + "/media", "{}",
                                         "application/json");
  ASSERT_TRUE(issued);
  ASSERT_EQ(issued->status, 200) << issued->body;
  json media = json::parse(issued->body);
  const std::string video = media["video"];
  EXPECT_THAT(video, ::testing::MatchesRegex("/media/[0-9a-f]{32}/video"));

  // The store lets an image go once its task ended; a live task's is there.
  EXPECT_FALSE(media.contains("image"));
  v1::Task running = Submit("running.png", {{"mock.latency_ms", "600000"}}, 8);
  httplib::Result issued_running = client_->Post("/api/tasks/" + running.id() + "/media", "{}",
                                                 "application/json");
  ASSERT_TRUE(issued_running);
  json running_media = json::parse(issued_running->body);
  EXPECT_FALSE(running_media.contains("video"));
  httplib::Client anonymous("127.0.0.1", http_->port());
  httplib::Result image = anonymous.Get(running_media["image"].get<std::string>());
  ASSERT_TRUE(image);
  EXPECT_EQ(image->status, 200);
  EXPECT_EQ(image->get_header_value("Content-Type"), "image/png");
  EXPECT_EQ(image->body, TinyPng(8));
  httplib::Result no_video = anonymous.Get(
      running_media["image"].get<std::string>().substr(0, 39) + "/video");
  ASSERT_TRUE(no_video);
  EXPECT_EQ(no_video->status, 409);

  httplib::Result whole = anonymous.Get(video);
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->status, 200);
  EXPECT_EQ(static_cast<int64_t>(whole->body.size()), task.output_size_bytes());
  httplib::Result part = anonymous.Get(video, {{"Range", "bytes=100-199"}});
  ASSERT_TRUE(part);
  EXPECT_EQ(part->status, 206);
  EXPECT_EQ(part->body, whole->body.substr(100, 100));
  EXPECT_EQ(part->get_header_value("Content-Range"),
            "bytes 100-199/" + std::to_string(task.output_size_bytes()));
  httplib::Result download = anonymous.Get(media["download"].get<std::string>());
  ASSERT_TRUE(download);
  EXPECT_EQ(download->get_header_value("Content-Disposition"),
            "attachment; filename=\"clip_video.mp4\"");

  httplib::Result forged = anonymous.Get("/media/0123456789abcdef0123456789abcdef/video");
  ASSERT_TRUE(forged);
  EXPECT_EQ(forged->status, 404);
}

TEST_F(DashboardTest, WithTokensDataNeedsOneButThePageLoads) {
  StartHttp(true);
  httplib::Client anonymous("127.0.0.1", http_->port());
  for (const char* path : {"/api/tasks", "/api/overview", "/api/events", "/api/capabilities"}) {
    httplib::Result res = anonymous.Get(path);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401) << path;
  }
  httplib::Result post = anonymous.Post("/api/tasks/x/cancel", "{}", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 401);
  httplib::Result page = anonymous.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  GetJson("/api/tasks");  // with the token
}

// Reads Server-Sent Events from `path` until `done` says so or 10 s pass.
std::string ReadEvents(httplib::Client& client, const std::string& path,
                       const std::function<bool(const std::string&)>& done) {
  std::string got;
  client.Get(path, [&](const char* data, size_t size) {
    got.append(data, size);
    return !done(got);
  });
  return got;
}

TEST_F(DashboardTest, EventsPushTheOverviewWhenTheQueueChanges) {
  StartHttp(false);
  int events = 0;
  bool submitted = false;
  std::string got = ReadEvents(*client_, "/api/events", [&](const std::string& body) {
    int n = 0;
    for (size_t at = body.find("event: overview"); at != std::string::npos;
         at = body.find("event: overview", at + 1)) {
      ++n;
    }
    if (n > events) {
      events = n;
      if (!submitted) {
        submitted = true;
        Submit("live.png", {{"mock.latency_ms", "600000"}});
      }
    }
    return body.find("\"QUEUED\":1") != std::string::npos ||
           body.find("\"SUBMITTING\":1") != std::string::npos ||
           body.find("\"RUNNING\":1") != std::string::npos;
  });
  EXPECT_GE(events, 2) << got;
  EXPECT_THAT(got, StartsWith("event: overview\ndata: {"));
}

TEST_F(DashboardTest, EventStreamsAreCappedAndTheirSlotsComeBack) {
  max_streams_ = 1;
  StartHttp(false);
  httplib::Client first("127.0.0.1", http_->port());
  absl::Notification opened, release;
  std::thread holder([&] {
    first.Get("/api/events", [&](const char*, size_t) {
      if (!opened.HasBeenNotified()) opened.Notify();
      return !release.WaitForNotificationWithTimeout(absl::Milliseconds(10));
    });
  });
  opened.WaitForNotification();
  httplib::Result refused = client_->Get("/api/events");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->get_header_value("Retry-After"), "5");
  release.Notify();
  holder.join();
  // The slot is free again once the first stream's connection is done.
  int status = 0;
  for (int i = 0; i < 200 && status != 200; ++i) {
    ReadEvents(*client_, "/api/events", [&](const std::string& body) {
      status = body.find("event: overview") != std::string::npos ? 200 : 503;
      return true;
    });
    if (status != 200) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(status, 200);
}

TEST_F(DashboardTest, WatchStreamsATaskUntilItEnds) {
  StartHttp(false);
  v1::Task task = Submit("watched.png", {{"mock.latency_ms", "300"}});
  std::string got = ReadEvents(*client_, "/api/tasks/" + task.id() + "/watch",
                               [](const std::string&) { return false; });
  EXPECT_THAT(got, HasSubstr("event: task\ndata: {"));
  EXPECT_THAT(got, HasSubstr("\"state\":\"SUCCEEDED\""));
  httplib::Result missing = client_->Get("/api/tasks/01J0Z3YV6Q8W3C2M5N7P9R1T4X/watch");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

}  // namespace
}  // namespace videotask::testing
