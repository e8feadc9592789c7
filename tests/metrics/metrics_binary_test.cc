// The HTTP port of the real videotaskd: /metrics scraped while tasks flow,
// the probes through a SIGTERM drain, bounded label cardinality, tokens on
// the port, and JSON logs that parse line by line.
#include <signal.h>

#include <gmock/gmock.h>
#include <httplib.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "tests/hardening/test_pki.h"
#include "tests/metrics/scrape.h"
#include "tests/testing/daemon.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/temp_dir.h"
#include "videotask/v1/video_task_service.grpc.pb.h"

namespace videotask::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kMock[] = "backend=\"mock\"";

class MetricsBinaryTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> extra = {}, bool off = false) {
    std::vector<std::string> args = {"--data_dir=" + tmp_.path() + "/data", "--backends=mock",
                                     "--log_level=info"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::string error;
    ASSERT_TRUE(daemon_.Start(args, &error)) << error;
    if (!off) {
      ASSERT_GT(daemon_.http_port(), 0) << daemon_.Log();
    }
    channel_ = grpc::CreateChannel(daemon_.address(), grpc::InsecureChannelCredentials());
    stub_ = v1::VideoTaskService::NewStub(channel_);
  }

  v1::SubmitTaskRequest Request(const std::string& filename, int seed,
                                std::map<std::string, std::string> labels = {}) {
    v1::SubmitTaskRequest request;
    request.mutable_spec()->mutable_image()->set_content(TinyPng(seed));
    request.mutable_spec()->mutable_image()->set_filename(filename);
    for (const auto& [k, v] : labels) (*request.mutable_spec()->mutable_labels())[k] = v;
    return request;
  }

  std::string Submit(const v1::SubmitTaskRequest& request) {
    grpc::ClientContext ctx;
    v1::Task task;
    grpc::Status status = stub_->SubmitTask(&ctx, request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return task.id();
  }

  v1::Task WaitTerminal(const std::string& id) {
    v1::Task task;
    absl::Time give_up = absl::Now() + absl::Seconds(60);
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

  std::map<std::string, double> Scrape() {
    HttpAnswer answer = HttpGet(daemon_.http_port(), "/metrics");
    EXPECT_EQ(answer.status, 200) << answer.body;
    return ParseMetrics(answer.body);
  }

  // Scrapes until `done` holds (the state gauges are cached for a second).
  std::map<std::string, double> ScrapeUntil(
      const std::function<bool(const std::map<std::string, double>&)>& done) {
    std::map<std::string, double> m;
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    do {
      m = Scrape();
      if (done(m)) break;
      absl::SleepFor(absl::Milliseconds(100));
    } while (absl::Now() < give_up);
    return m;
  }

  TempDir tmp_;
  Daemon daemon_{VT_VIDEOTASKD_PATH, tmp_.path()};
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VideoTaskService::Stub> stub_;
};

TEST_F(MetricsBinaryTest, CountsFollowTheTasks) {
  Start({"--log_format=json"});
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(Submit(Request(absl::StrCat("ok_", i, ".png"), i)));
  for (int i = 0; i < 4; ++i) {
    ids.push_back(Submit(
        Request(absl::StrCat("bad_", i, ".png"), 10 + i, {{"mock.outcome", "fail"}})));
  }
  for (int i = 0; i < 2; ++i) {
    ids.push_back(Submit(
        Request(absl::StrCat("slow_", i, ".png"), 20 + i, {{"mock.latency_ms", "2500"}})));
  }
  {
    v1::SubmitTaskRequest invalid = Request("x.png", 30);
    invalid.mutable_spec()->set_ratio("7:3");
    grpc::ClientContext ctx;
    v1::Task task;
    EXPECT_EQ(stub_->SubmitTask(&ctx, invalid, &task).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }

  // A watcher of a slow task is counted while its stream is open.
  grpc::ClientContext watch_ctx;
  v1::WatchTaskRequest watch;
  watch.set_id(ids.back());
  std::unique_ptr<grpc::ClientReader<v1::Task>> stream = stub_->WatchTask(&watch_ctx, watch);
  v1::Task first;
  ASSERT_TRUE(stream->Read(&first));

  // While tasks flow: every submitted task is counted in exactly one state.
  std::map<std::string, double> m = Scrape();
  EXPECT_GE(ValueOf(m, "videotask_watchers"), 1);
  EXPECT_EQ(ValueOf(m, "videotask_tasks_submitted_total{backend=\"mock\"}"), 12);
  EXPECT_EQ(SumOf(m, "videotask_tasks", {kMock}), 12);
  EXPECT_EQ(ValueOf(m, "videotask_rpc_requests_total{code=\"OK\",method=\"SubmitTask\"}"), 12);
  EXPECT_EQ(
      ValueOf(m, "videotask_rpc_requests_total{code=\"INVALID_ARGUMENT\",method=\"SubmitTask\"}"),
      1);

  int succeeded = 0, failed = 0;
  for (const std::string& id : ids) {
    v1::State state = WaitTerminal(id).state();
    succeeded += state == v1::SUCCEEDED;
    failed += state == v1::FAILED;
  }
  ASSERT_EQ(succeeded, 8);
  ASSERT_EQ(failed, 4);

  while (stream->Read(&first)) {
  }
  EXPECT_TRUE(stream->Finish().ok());
  // Watchers leave when their call ends, a moment after the answer.
  m = ScrapeUntil([](const auto& m) {
    return ValueOf(m, "videotask_tasks{backend=\"mock\",state=\"SUCCEEDED\"}") == 8 &&
           ValueOf(m, "videotask_watchers") == 0;
  });
  EXPECT_EQ(ValueOf(m, "videotask_tasks{backend=\"mock\",state=\"SUCCEEDED\"}"), 8);
  EXPECT_EQ(ValueOf(m, "videotask_tasks{backend=\"mock\",state=\"FAILED\"}"), 4);
  EXPECT_EQ(ValueOf(m, "videotask_tasks{backend=\"mock\",state=\"QUEUED\"}"), 0);
  EXPECT_EQ(ValueOf(m, "videotask_tasks{backend=\"mock\",state=\"RUNNING\"}"), 0);
  EXPECT_EQ(ValueOf(m, "videotask_queue_oldest_age_seconds{backend=\"mock\"}"), 0);
  EXPECT_EQ(SumOf(m, "videotask_task_transitions_total", {kMock, "to=\"SUCCEEDED\""}), 8);
  EXPECT_EQ(SumOf(m, "videotask_task_transitions_total", {kMock, "to=\"FAILED\""}), 4);
  EXPECT_EQ(ValueOf(m, "videotask_task_transitions_total{backend=\"mock\",from=\"QUEUED\","
                       "to=\"SUBMITTING\"}"),
            12);
  EXPECT_EQ(ValueOf(m, "videotask_task_duration_seconds_count{backend=\"mock\",state=\"SUCCEEDED\"}"),
            8);
  EXPECT_EQ(ValueOf(m, "videotask_task_duration_seconds_count{backend=\"mock\",state=\"FAILED\"}"),
            4);
  EXPECT_EQ(ValueOf(m, "videotask_provider_requests_total{backend=\"mock\",code=\"ok\",op=\"create\"}"),
            12);
  EXPECT_EQ(SumOf(m, "videotask_provider_requests_total", {kMock, "op=\"download\""}), 8);
  EXPECT_GE(SumOf(m, "videotask_provider_request_duration_seconds_count", {kMock, "op=\"poll\""}),
            12);
  EXPECT_EQ(ValueOf(m, "videotask_ambiguous_creates_total{backend=\"mock\"}"), 0);
  EXPECT_GT(ValueOf(m, "videotask_store_commit_duration_seconds_count"), 0);
  EXPECT_GE(ValueOf(m, "videotask_store_commit_batch_size_sum"), 12);
  EXPECT_EQ(ValueOf(m, "videotask_watchers"), 0);
  EXPECT_GT(ValueOf(m, "process_resident_memory_bytes"), 1e6);
  EXPECT_GT(ValueOf(m, "process_open_fds"), 3);
  EXPECT_GT(ValueOf(m, "process_start_time_seconds"), 1.6e9);

  // The JSON log: one object per line, with the task's fields on task lines.
  daemon_.Signal(SIGTERM);
  ASSERT_EQ(daemon_.Wait(), 0);
  int lines = 0, with_task = 0;
  std::istringstream log(daemon_.Log());
  for (std::string line; std::getline(log, line);) {
    if (line.empty()) continue;
    ++lines;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(j.is_discarded()) << line;
    EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("message")) << line;
    if (j.contains("task_id")) {
      ++with_task;
      EXPECT_EQ(j.value("backend", ""), "mock") << line;
      EXPECT_FALSE(j.value("provider_task_id", "").empty()) << line;
    }
  }
  EXPECT_GT(lines, 3);
  EXPECT_GE(with_task, 4) << daemon_.Log();  // "task ... failed" of each failing task
}

TEST_F(MetricsBinaryTest, ReadyzTurns503OnSigtermBeforeThePortCloses) {
  Start({"--drain_delay=3s"});
  EXPECT_EQ(HttpGet(daemon_.http_port(), "/readyz").status, 200);
  EXPECT_EQ(HttpGet(daemon_.http_port(), "/healthz").status, 200);
  daemon_.Signal(SIGTERM);
  HttpAnswer ready;
  absl::Time give_up = absl::Now() + absl::Seconds(2);
  while (absl::Now() < give_up) {
    ready = HttpGet(daemon_.http_port(), "/readyz");
    if (ready.status == 503) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(ready.status, 503);
  EXPECT_THAT(ready.body, HasSubstr("draining"));
  // Still up: alive, and the metrics still answer.
  EXPECT_EQ(HttpGet(daemon_.http_port(), "/healthz").status, 200);
  EXPECT_EQ(HttpGet(daemon_.http_port(), "/metrics").status, 200);
  EXPECT_EQ(daemon_.Wait(), 0);
  EXPECT_EQ(HttpGet(daemon_.http_port(), "/readyz").status, 0);  // closed
}

TEST_F(MetricsBinaryTest, DistinctLabelsAndStubsAddNoSeries) {
  Start();
  auto batch = [&](int first, int count) {
    std::vector<std::string> ids;
    for (int start = first; start < first + count; start += 100) {
      v1::BatchSubmitTasksRequest request;
      for (int i = start; i < std::min(first + count, start + 100); ++i) {
        *request.add_requests() =
            Request(absl::StrCat("customer_", i, "_frame.png"), i,
                    {{"customer", absl::StrCat("c", i)}, {absl::StrCat("k", i), "v"}});
      }
      grpc::ClientContext ctx;
      v1::BatchSubmitTasksResponse response;
      EXPECT_TRUE(stub_->BatchSubmitTasks(&ctx, request, &response).ok());
      for (const auto& r : response.results()) ids.push_back(r.task().id());
    }
    for (const std::string& id : ids) EXPECT_EQ(WaitTerminal(id).state(), v1::SUCCEEDED);
  };
  batch(0, 5);
  std::set<std::string> before = SeriesOf(Scrape());
  batch(5, 1000);
  std::map<std::string, double> m = ScrapeUntil([](const auto& m) {
    return ValueOf(m, "videotask_tasks{backend=\"mock\",state=\"SUCCEEDED\"}") == 1005;
  });
  EXPECT_EQ(ValueOf(m, "videotask_tasks{backend=\"mock\",state=\"SUCCEEDED\"}"), 1005);
  EXPECT_EQ(SeriesOf(m), before);
  for (const std::string& series : SeriesOf(m)) {
    EXPECT_THAT(series, ::testing::Not(HasSubstr("customer"))) << series;
  }
}

TEST_F(MetricsBinaryTest, TokensGuardMetricsButNotProbes) {
  const std::string token = "metrics-test-token-0123456789";
  const std::string token_file = tmp_.path() + "/tokens";
  std::ofstream(token_file) << token << "\n";
  Start({"--auth_token_file=" + token_file});
  EXPECT_EQ(HttpGet(daemon_.http_port(), "/metrics").status, 401);
  EXPECT_EQ(HttpGet(daemon_.http_port(), "/metrics", "wrong-token-0123456789abc").status, 401);
  HttpAnswer ok = HttpGet(daemon_.http_port(), "/metrics", token);
  EXPECT_EQ(ok.status, 200);
  EXPECT_THAT(ok.body, HasSubstr("videotask_tasks{"));
  EXPECT_EQ(HttpGet(daemon_.http_port(), "/healthz").status, 200);
  EXPECT_EQ(HttpGet(daemon_.http_port(), "/readyz").status, 200);
  EXPECT_EQ(HttpGet(daemon_.http_port(), "/nothing-here", token).status, 404);
  EXPECT_THAT(daemon_.Log(), ::testing::Not(HasSubstr(token)));
}

TEST_F(MetricsBinaryTest, TlsFlagsMakeTheHttpPortHttps) {
  absl::StatusOr<TestPki> pki = MakeTestPki(tmp_.path());
  ASSERT_TRUE(pki.ok()) << pki.status();
  std::string error;
  ASSERT_TRUE(daemon_.Start({"--data_dir=" + tmp_.path() + "/data", "--backends=mock",
                             "--tls_cert=" + pki->server_cert_file,
                             "--tls_key=" + pki->server_key_file},
                            &error))
      << error;
  ASSERT_GT(daemon_.http_port(), 0);
  // Plain HTTP gets no answer from a TLS port.
  EXPECT_EQ(HttpGet(daemon_.http_port(), "/healthz").status, 0);
  httplib::SSLClient client("127.0.0.1", daemon_.http_port());
  client.set_ca_cert_path(pki->server_cert_file.c_str());
  client.enable_server_certificate_verification(true);
  httplib::Result healthz = client.Get("/healthz");
  ASSERT_TRUE(healthz) << httplib::to_string(healthz.error());
  EXPECT_EQ(healthz->status, 200);
  httplib::Result metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body, HasSubstr("videotask_tasks{"));
}

TEST_F(MetricsBinaryTest, EmptyHttpListenTurnsThePortOff) {
  Start({"--http_listen="}, /*off=*/true);
  EXPECT_EQ(daemon_.http_port(), 0);
}

TEST_F(MetricsBinaryTest, BadFlagsStopTheStart) {
  EXPECT_EQ(daemon_.RunToExit({"--listen=127.0.0.1:0", "--data_dir=" + tmp_.path() + "/d",
                               "--backends=mock", "--http_listen=nonsense"}),
            2);
  EXPECT_THAT(daemon_.Log(), HasSubstr("--http_listen"));
  EXPECT_EQ(daemon_.RunToExit({"--listen=127.0.0.1:0", "--data_dir=" + tmp_.path() + "/d",
                               "--backends=mock", "--log_format=xml"}),
            2);
  EXPECT_THAT(daemon_.Log(), HasSubstr("--log_format"));
}

}  // namespace
}  // namespace videotask::testing
