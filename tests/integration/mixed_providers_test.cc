// One batch over all four backends (mock, runway, fal, replicate) through the
// real server, with each provider's loopback fake injecting faults: refusals
// with Retry-After, 5xx, dropped connections, malformed and truncated
// answers, lost create answers, provider and moderation failures, and tasks
// cancelled while they run. Then every task's end tells the truth, each
// provider saw each task created at most once, the cancels reached the
// providers, and every video is the provider's bytes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/fal/fal_backend.h"
#include "backends/http/curl_transport.h"
#include "backends/mock/mock_video.h"
#include "backends/replicate/replicate_backend.h"
#include "backends/runway/runway_backend.h"
#include "tests/testing/fake_fal_server.h"
#include "tests/testing/fake_replicate_server.h"
#include "tests/testing/fake_runway_server.h"
#include "tests/testing/server_fixture.h"

namespace videotask::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// What a task of the batch is scripted to do, and so how it must end.
enum class Plan { kSucceed, kAmbiguous, kProviderFailed, kCancel };

struct Item {
  std::string backend;
  std::string name;  // its prompt is "<backend> <name>"
  Plan plan;
  std::string provider_code;                  // kProviderFailed
  std::map<std::string, std::string> labels;  // mock scripts
  std::string prompt() const { return absl::StrCat(backend, " ", name); }
};

const std::vector<Item>& Batch() {
  static const auto* items = new std::vector<Item>{
      {"mock", "ok", Plan::kSucceed, "",
       {{"mock.start_errors", "1"}, {"mock.poll_errors", "1"}, {"mock.fetch_errors", "1"}}},
      {"mock", "lost", Plan::kAmbiguous, "",
       {{"mock.start_errors", "1"}, {"mock.start_error", "ambiguous"}}},
      {"mock", "failed", Plan::kProviderFailed, "INTERNAL.BAD_OUTPUT",
       {{"mock.outcome", "fail"}}},
      {"mock", "cancel", Plan::kCancel, "", {{"mock.latency_ms", "3600000"}}},
      {"runway", "ok", Plan::kSucceed, "", {}},
      {"runway", "plain", Plan::kSucceed, "", {}},
      {"runway", "lost", Plan::kAmbiguous, "", {}},
      {"runway", "flagged", Plan::kProviderFailed, "SAFETY.INPUT.IMAGE", {}},
      {"runway", "cancel", Plan::kCancel, "", {}},
      {"fal", "ok", Plan::kSucceed, "", {}},
      {"fal", "plain", Plan::kSucceed, "", {}},
      {"fal", "lost", Plan::kAmbiguous, "", {}},
      {"fal", "flagged", Plan::kProviderFailed, "content_policy_violation", {}},
      {"fal", "cancel", Plan::kCancel, "", {}},
      {"replicate", "ok", Plan::kSucceed, "", {}},
      {"replicate", "lost", Plan::kAmbiguous, "", {}},
      {"replicate", "garbled", Plan::kAmbiguous, "", {}},
      {"replicate", "flagged", Plan::kProviderFailed, "E005", {}},
      {"replicate", "cancel", Plan::kCancel, "", {}},
  };
  return *items;
}

// Polls `done` until it holds or 10 s pass (for the fakes' ledgers, which a
// provider cancel reaches after the task is already CANCELLED).
bool Eventually(const std::function<bool()>& done) {
  for (absl::Time give_up = absl::Now() + absl::Seconds(10); absl::Now() < give_up;) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return done();
}

class MixedProvidersTest : public ServerTest {
 protected:
  void Configure(AppConfig& config) override {
    if (runway_.port() == 0) {
      ASSERT_TRUE(runway_.Start().ok());
      ASSERT_TRUE(fal_.Start().ok());
      ASSERT_TRUE(replicate_.Start().ok());
    }
    auto fast = [](const char* name) {
      backends::BackendConfig c;
      c.name = name;
      c.max_concurrency = 4;
      c.poll_interval = absl::Milliseconds(20);
      return c;
    };
    // Mock is already in the test config; the providers go before it.
    config.backends.insert(
        config.backends.begin(),
        {backends::RunwaySetup(fast("runway"), {runway_.base_url(), kFakeRunwaySecret}),
         backends::FalSetup(fast("fal"), {fal_.base_url(), kFakeFalKey, fal_.base_url()}),
         backends::ReplicateSetup(fast("replicate"),
                                  {replicate_.base_url(), kFakeReplicateToken})});
  }
  std::unique_ptr<backends::HttpTransport> MakeHttp() override {
    backends::CurlOptions options;
    options.total_timeout = absl::Seconds(2);
    auto curl = backends::CurlTransport::Create(options);
    EXPECT_TRUE(curl.ok()) << curl.status();
    return curl.ok() ? *std::move(curl) : nullptr;
  }

  // Each provider's faults: per task (by prompt) where the end depends on
  // it, per route (whichever task comes first) where any task recovers.
  void ScriptFaults() {
    runway_.EnqueueForPrompt("runway ok", FakeReply::Error(429, "Too many requests", "1"));
    runway_.EnqueueForPrompt("runway ok", FakeReply::Error(503, "overloaded"));
    runway_.EnqueueForPrompt("runway lost", FakeReply::Close());
    runway_.SetTaskScriptForPrompt(
        "runway flagged",
        {{"PENDING"}, {"FAILED", -1, "The input image was flagged", "SAFETY.INPUT.IMAGE"}});
    runway_.SetTaskScriptForPrompt("runway cancel", {{"PENDING"}, {"RUNNING", 0.3}});
    runway_.Enqueue(FakeRoute::kGetTask, FakeReply::Error(502, "bad gateway"));
    runway_.Enqueue(FakeRoute::kGetTask, FakeReply::Raw(200, "{not json"));
    runway_.Enqueue(FakeRoute::kGetTask, FakeReply::Close());
    runway_.Enqueue(FakeRoute::kOutput, FakeReply::Truncated());
    runway_.SetOutput(std::string(120'000, 'r'));

    fal_.EnqueueForPrompt("fal ok", FalRequestError(429, "rate_limited", "slow down", "1"));
    fal_.EnqueueForPrompt("fal ok", FalRequestError(503, "runner_unavailable", "no runner"));
    fal_.EnqueueForPrompt("fal lost", FakeReply::Close());
    fal_.SetScriptForPrompt(
        "fal flagged", {{"IN_QUEUE", 1}, {"IN_PROGRESS"}, {"COMPLETED"}},
        FalModelError(422, "content_policy_violation", "The image was flagged.", "image_url"));
    fal_.SetScriptForPrompt("fal cancel", {{"IN_QUEUE", 3}, {"IN_PROGRESS"}});
    fal_.Enqueue(FalRoute::kStatus, FalRequestError(502, "runner_connection_error", "gateway"));
    fal_.Enqueue(FalRoute::kStatus, FakeReply::Raw(202, "{not json"));
    fal_.Enqueue(FalRoute::kResult, FalRequestError(504, "request_timeout", "slow result"));
    fal_.Enqueue(FalRoute::kFile, FakeReply::Raw(503, "busy"));

    replicate_.EnqueueForPrompt(
        "replicate ok", ReplicateReply::Problem(429, "Too Many Requests", "throttled", "1"));
    replicate_.EnqueueForPrompt("replicate ok",
                                ReplicateReply::Problem(503, "Unavailable", "overloaded"));
    replicate_.EnqueueForPrompt("replicate lost", ReplicateReply::Truncated());
    replicate_.EnqueueForPrompt("replicate garbled", ReplicateReply::Raw(201, "<html>proxy</html>"));
    replicate_.SetScriptForPrompt(
        "replicate flagged",
        {{"processing"},
         {"failed", "The input or output was flagged as sensitive. Please try again with "
                    "different inputs. (E005)"}});
    replicate_.SetScriptForPrompt("replicate cancel", {{"starting"}, {"processing"}});
    replicate_.Enqueue(ReplicateRoute::kGetPrediction, ReplicateReply::Problem(502, "Bad", "x"));
    replicate_.Enqueue(ReplicateRoute::kGetPrediction, ReplicateReply::Raw(200, "{not json"));
    replicate_.Enqueue(ReplicateRoute::kGetPrediction, ReplicateReply::Close());
    replicate_.Enqueue(ReplicateRoute::kOutput, ReplicateReply::Problem(503, "busy", "busy"));
    replicate_.SetOutput(std::string(90'000, 'p'));
  }

  std::vector<v1::Task> SubmitBatch() {
    v1::BatchSubmitTasksRequest batch;
    int seed = 0;
    for (const Item& item : Batch()) {
      v1::SubmitTaskRequest* request = batch.add_requests();
      *request = PngRequest(absl::StrCat(item.backend, "_", item.name, ".png"), ++seed);
      request->mutable_spec()->set_backend(item.backend);
      request->mutable_spec()->set_prompt_text(item.prompt());
      for (const auto& [key, value] : item.labels) {
        (*request->mutable_spec()->mutable_labels())[key] = value;
      }
    }
    grpc::ClientContext ctx;
    v1::BatchSubmitTasksResponse response;
    grpc::Status status = stub_->BatchSubmitTasks(&ctx, batch, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<v1::Task> tasks;
    for (const v1::BatchSubmitResult& result : response.results()) {
      EXPECT_FALSE(result.has_error()) << result.error().message();
      tasks.push_back(result.task());
    }
    EXPECT_EQ(tasks.size(), Batch().size());
    return tasks;
  }

  // Watches the task until the provider reports it running, then cancels it.
  void CancelWhenRunning(const std::string& id) {
    grpc::ClientContext watch_ctx;
    watch_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::WatchTaskRequest watch;
    watch.set_id(id);
    auto stream = stub_->WatchTask(&watch_ctx, watch);
    v1::Task task;
    bool running = false;
    while (!running && stream->Read(&task)) {
      running = task.state() == v1::RUNNING && !task.provider_status().empty();
    }
    watch_ctx.TryCancel();
    stream->Finish();
    ASSERT_TRUE(running) << id << " never ran; last state " << v1::State_Name(task.state());
    grpc::ClientContext ctx;
    v1::CancelTaskRequest cancel;
    cancel.set_id(id);
    v1::Task cancelled;
    grpc::Status status = stub_->CancelTask(&ctx, cancel, &cancelled);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  std::string ReadOutput(const std::string& id) {
    grpc::ClientContext ctx;
    v1::ReadTaskOutputRequest request;
    request.set_id(id);
    auto stream = stub_->ReadTaskOutput(&ctx, request);
    std::string bytes;
    v1::OutputChunk chunk;
    while (stream->Read(&chunk)) bytes += chunk.data();
    grpc::Status status = stream->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return bytes;
  }

  // The bytes the provider served for every video.
  std::string ProviderBytes(const std::string& backend) {
    if (backend == "runway") return runway_.output();
    if (backend == "fal") return fal_.output();
    if (backend == "replicate") return replicate_.output();
    return std::string(backends::MockVideo());
  }

  // Create requests the provider saw carrying this task's prompt, and tasks
  // it created from them.
  std::pair<int, int> Creates(const Item& item, const v1::Task& task) {
    auto count = [&](const std::vector<std::string>& prompts) {
      return static_cast<int>(std::count(prompts.begin(), prompts.end(), item.prompt()));
    };
    if (item.backend == "runway") {
      return {runway_.create_requests_with_prompt(item.prompt()),
              count(runway_.created_prompts())};
    }
    if (item.backend == "fal") {
      return {fal_.submits_with_prompt(item.prompt()), fal_.queued_with_prompt(item.prompt())};
    }
    if (item.backend == "replicate") {
      return {replicate_.create_requests_with_prompt(item.prompt()),
              count(replicate_.created_prompts())};
    }
    int created = mock().CreateCount(task.id());
    return {-1, created};  // the mock counts creates, not requests
  }

  // The provider's own record that this task was cancelled.
  bool CancelledAtProvider(const std::string& backend, const v1::Task& task) {
    const std::string& pid = task.provider_task_id();
    auto has = [&pid](const std::vector<std::string>& ids, const std::string& prefix = "") {
      return std::any_of(ids.begin(), ids.end(),
                         [&](const std::string& id) { return prefix + id == pid; });
    };
    if (backend == "runway") return has(runway_.cancelled_ids());
    if (backend == "fal") return has(fal_.cancelled_ids(), "fal-ai/kling-video:");
    if (backend == "replicate") return has(replicate_.cancelled_ids());
    return mock().CancelCount(pid) == 1;
  }

  FakeRunwayServer runway_;
  FakeFalServer fal_;
  FakeReplicateServer replicate_;
};

void ExpectTruthfulEnd(const Item& item, const v1::Task& task) {
  SCOPED_TRACE(item.prompt());
  switch (item.plan) {
    case Plan::kSucceed:
      EXPECT_EQ(task.state(), v1::SUCCEEDED) << task.error().code() << ": " << task.error().message();
      EXPECT_FALSE(task.has_error());
      break;
    case Plan::kAmbiguous:
      EXPECT_EQ(task.state(), v1::FAILED);
      EXPECT_EQ(task.error().code(), "SUBMISSION_AMBIGUOUS") << task.error().message();
      EXPECT_FALSE(task.error().retryable());
      EXPECT_EQ(task.attempt_count(), 1);
      break;
    case Plan::kProviderFailed:
      EXPECT_EQ(task.state(), v1::FAILED);
      EXPECT_EQ(task.error().code(), "PROVIDER_FAILED") << task.error().message();
      EXPECT_EQ(task.error().provider_code(), item.provider_code);
      EXPECT_FALSE(task.error().retryable());
      EXPECT_FALSE(task.provider_task_id().empty());  // not re-created: see the ledgers
      break;
    case Plan::kCancel:
      EXPECT_EQ(task.state(), v1::CANCELLED);
      EXPECT_FALSE(task.provider_task_id().empty());
      break;
  }
  EXPECT_EQ(task.spec().backend(), item.backend);
}

TEST_F(MixedProvidersTest, OneBatchOverFourBackendsEndsTruthfully) {
  ScriptFaults();
  const std::vector<v1::Task> submitted = SubmitBatch();
  ASSERT_EQ(submitted.size(), Batch().size());
  for (size_t i = 0; i < submitted.size(); ++i) {
    if (Batch()[i].plan == Plan::kCancel) CancelWhenRunning(submitted[i].id());
  }

  for (size_t i = 0; i < submitted.size(); ++i) {
    const Item& item = Batch()[i];
    SCOPED_TRACE(item.prompt());
    const v1::Task task = WaitTerminal(submitted[i].id());
    ExpectTruthfulEnd(item, task);

    // Created at most once; refusals were retried, a lost answer never was.
    // (The runway and replicate fakes drop a lost answer's create, fal's and
    // the mock's keep it.)
    auto [requests, created] = Creates(item, task);
    if (item.plan == Plan::kAmbiguous) {
      EXPECT_LE(created, 1);
    } else {
      EXPECT_EQ(created, 1);
    }
    if (item.backend != "mock") {
      const bool refused_twice = item.name == "ok";  // the 429 and the 5xx
      EXPECT_EQ(requests, refused_twice ? 3 : 1);
    }
    if (item.plan == Plan::kCancel) {
      EXPECT_TRUE(Eventually([&] { return CancelledAtProvider(item.backend, task); }))
          << "the cancel of " << task.provider_task_id() << " never reached " << item.backend;
    }
    if (item.plan == Plan::kSucceed) {
      const std::string bytes = ReadOutput(task.id());
      EXPECT_EQ(bytes.size(), ProviderBytes(item.backend).size());
      EXPECT_TRUE(bytes == ProviderBytes(item.backend)) << "the video is not the provider's bytes";
      EXPECT_EQ(task.output_size_bytes(), static_cast<int64_t>(bytes.size()));
    }
    if (item.plan == Plan::kProviderFailed && item.backend != "mock") {
      EXPECT_THAT(task.error().message(), HasSubstr("flagged"));
    }
  }

  // Every route fault was served (to whichever task came first; it recovered).
  for (FakeRoute r : {FakeRoute::kGetTask, FakeRoute::kOutput}) EXPECT_EQ(runway_.unserved(r), 0);
  for (FalRoute r : {FalRoute::kStatus, FalRoute::kResult, FalRoute::kFile}) {
    EXPECT_EQ(fal_.unserved(r), 0);
  }
  for (ReplicateRoute r : {ReplicateRoute::kGetPrediction, ReplicateRoute::kOutput}) {
    EXPECT_EQ(replicate_.unserved(r), 0);
  }
  // Two runway videos, one of them fetched again after the truncated answer.
  EXPECT_EQ(runway_.request_count(FakeRoute::kOutput), 3);
  EXPECT_THAT(runway_.violations(), IsEmpty());
  EXPECT_THAT(fal_.violations(), IsEmpty());
  EXPECT_THAT(replicate_.violations(), IsEmpty());
  // Every task the providers created is one of ours, once.
  EXPECT_EQ(runway_.task_ids().size(), 4u);     // ok, plain, flagged, cancel
  EXPECT_EQ(fal_.queued_ids().size(), 5u);      // ok, plain, lost, flagged, cancel
  EXPECT_EQ(replicate_.prediction_ids().size(), 3u);  // ok, flagged, cancel
  EXPECT_EQ(mock().TotalCreates(), 4);
}

}  // namespace
}  // namespace videotask::testing
