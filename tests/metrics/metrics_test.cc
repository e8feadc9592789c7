// Metrics without a server: label values stay in closed sets, provider
// codes, durations of terminal tasks, and the collectors over a real
// SQLite store.
#include "server/metrics/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/api/errors.h"
#include "common/clock.h"
#include "server/metrics/collectors.h"
#include "server/store/sqlite/sqlite_task_store.h"
#include "tests/metrics/scrape.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace videotask::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::videotask::testing::ParseMetrics;
using ::videotask::testing::ValueOf;

TEST(ProviderCodeLabelTest, HttpStatusOrErrorKind) {
  EXPECT_EQ(ProviderCodeLabel(absl::OkStatus()), "ok");
  EXPECT_EQ(ProviderCodeLabel(backends::WithHttpStatus(absl::UnavailableError("x"), 503)), "503");
  EXPECT_EQ(ProviderCodeLabel(backends::WithHttpStatus(absl::UnavailableError("x"), 7000)),
            "unavailable");
  EXPECT_EQ(ProviderCodeLabel(absl::DeadlineExceededError("slow")), "deadline_exceeded");
}

TEST(MetricsTest, UnknownBackendsAndMethodsBecomeOther) {
  Metrics metrics({"mock"});
  metrics.OnSubmitted("mock", 2);
  metrics.OnSubmitted("caller text <b>", 1);
  metrics.OnRpc("/videotask.v1.VideoTaskService/SubmitTask", 0, absl::Milliseconds(3));
  metrics.OnRpc("/x/we ird\"name", 3, absl::Milliseconds(3));
  metrics.OnProviderCall("mock", engine::ProviderOp::kPoll,
                         backends::WithHttpStatus(absl::ResourceExhaustedError("slow down"), 429),
                         absl::Milliseconds(40));
  metrics.OnRetry("mock", engine::ProviderOp::kPoll);
  metrics.OnAmbiguousCreate("mock");
  metrics.OnLeaseTakeover(3);
  std::string text = metrics.Scrape();
  auto m = ParseMetrics(text);
  EXPECT_EQ(ValueOf(m, "videotask_tasks_submitted_total{backend=\"mock\"}"), 2);
  EXPECT_EQ(ValueOf(m, "videotask_tasks_submitted_total{backend=\"other\"}"), 1);
  EXPECT_EQ(ValueOf(m, "videotask_rpc_requests_total{code=\"OK\",method=\"SubmitTask\"}"), 1);
  EXPECT_EQ(ValueOf(m, "videotask_rpc_requests_total{code=\"INVALID_ARGUMENT\",method=\"other\"}"),
            1);
  EXPECT_EQ(ValueOf(m, "videotask_provider_requests_total{backend=\"mock\",code=\"429\",op=\"poll\"}"),
            1);
  EXPECT_EQ(ValueOf(m, "videotask_retries_total{backend=\"mock\",op=\"poll\"}"), 1);
  EXPECT_EQ(ValueOf(m, "videotask_ambiguous_creates_total{backend=\"mock\"}"), 1);
  EXPECT_EQ(ValueOf(m, "videotask_lease_takeovers_total"), 3);
  EXPECT_THAT(text, Not(HasSubstr("caller text")));
  EXPECT_THAT(text, Not(HasSubstr("ird")));
}

TEST(MetricsTest, TerminalTransitionsTimeTheTask) {
  Metrics metrics({"mock"});
  Task task;
  task.spec.backend = "mock";
  task.create_time = absl::FromUnixSeconds(1000);
  task.end_time = absl::FromUnixSeconds(1042);
  task.state = TaskState::kSucceeded;
  metrics.OnTransition(TaskState::kDownloading, task);
  task.state = TaskState::kRunning;
  metrics.OnTransition(TaskState::kSubmitting, task);
  auto m = ParseMetrics(metrics.Scrape());
  EXPECT_EQ(ValueOf(m, "videotask_task_transitions_total{backend=\"mock\",from=\"DOWNLOADING\","
                       "to=\"SUCCEEDED\"}"),
            1);
  EXPECT_EQ(ValueOf(m, "videotask_task_duration_seconds_count{backend=\"mock\",state=\"SUCCEEDED\"}"),
            1);
  EXPECT_EQ(ValueOf(m, "videotask_task_duration_seconds_sum{backend=\"mock\",state=\"SUCCEEDED\"}"),
            42);
  EXPECT_EQ(ValueOf(m, "videotask_task_duration_seconds_count{backend=\"mock\",state=\"RUNNING\"}"),
            0);
}

TEST(MetricsTest, CommitsAndTheirFailures) {
  Metrics metrics({});
  metrics.OnCommit(absl::Milliseconds(2), 17, true);
  EXPECT_TRUE(metrics.last_commit_ok());
  metrics.OnCommit(absl::Milliseconds(2), 3, false);
  EXPECT_FALSE(metrics.last_commit_ok());
  auto m = ParseMetrics(metrics.Scrape());
  EXPECT_EQ(ValueOf(m, "videotask_store_commit_batch_size_sum"), 17);
  EXPECT_EQ(ValueOf(m, "videotask_store_commit_failures_total"), 1);
}

TEST(CollectorsTest, StateGaugesAndProcessFromARealStore) {
  testing::TempDir tmp;
  SystemClock clock;
  store::SqliteStoreOptions options;
  options.data_dir = tmp.path();
  VT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<store::SqliteTaskStore> store,
                          store::SqliteTaskStore::Open(options));
  Metrics metrics({"mock"});
  StoreGaugesOptions gauges;
  gauges.backends = {"mock"};
  gauges.max_age = absl::ZeroDuration();
  gauges.watchers = [] { return int64_t{7}; };
  metrics.Add(std::make_shared<StoreGauges>(gauges, *store, clock));
  metrics.Add(std::make_shared<ProcessCollector>());
  Task t;
  t.id = "t1";
  t.spec.backend = "mock";
  t.spec.image.source = ImageSource::kUri;
  t.spec.image.uri = "https://example.com/a.png";
  t.target_filename_stub = "a_video";
  t.create_time = clock.Now() - absl::Seconds(90);
  t.spec_fingerprint = SpecFingerprint(t.spec, t.image_sha256);
  store::NewTask n;
  n.task = t;
  std::vector<store::NewTask> batch;
  batch.push_back(std::move(n));
  store::InsertResults inserted = store->Insert(std::move(batch));
  ASSERT_TRUE(inserted[0].ok()) << inserted[0].status();
  auto m = ParseMetrics(metrics.Scrape());
  EXPECT_EQ(ValueOf(m, "videotask_tasks{backend=\"mock\",state=\"QUEUED\"}"), 1);
  EXPECT_EQ(ValueOf(m, "videotask_tasks{backend=\"mock\",state=\"FAILED\"}"), 0);
  EXPECT_GE(ValueOf(m, "videotask_queue_oldest_age_seconds{backend=\"mock\"}"), 89);
  EXPECT_EQ(ValueOf(m, "videotask_watchers"), 7);
  EXPECT_EQ(ValueOf(m, "videotask_store_readable"), 1);
  EXPECT_GT(ValueOf(m, "process_resident_memory_bytes"), 0);
  EXPECT_GT(ValueOf(m, "process_max_fds"), 0);
}

}  // namespace
}  // namespace videotask::metrics
