// The engine driven deterministically: a fake clock, an inline executor,
// a real SQLite store in a temp dir and the mock backend (scripted by
// labels). No sleeps: the test moves time and calls RunOnce().
#include "server/engine/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "backends/api/errors.h"
#include "backends/mock/mock_backend.h"
#include "common/clock.h"
#include "common/executor.h"
#include "common/sha256.h"
#include "server/store/sqlite/sqlite_task_store.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace videotask::engine {
namespace {

using ::testing::HasSubstr;
using ::videotask::testing::StatusIs;

// A backend whose Start/Poll/Fetch answers are scripted per call, to reach
// states the mock's labels cannot (e.g. a 429 with Retry-After).
class ScriptedBackend final : public backends::Backend {
 public:
  ScriptedBackend() {
    caps_.default_model = "gen4_turbo";
    backends::ModelCapabilities m;
    m.name = "gen4_turbo";
    m.ratios = backends::Gen4Ratios();
    m.default_ratio = "1280:720";
    m.durations = {4};
    m.default_duration_seconds = 4;
    m.max_prompt_utf16 = 1000;
    caps_.models = {m};
    caps_.max_image_bytes = 1 << 20;
    caps_.image_mime_types = {"image/png"};
  }
  const backends::Capabilities& capabilities() const override { return caps_; }
  absl::StatusOr<std::string> Start(const backends::StartRequest& request) override {
    ++starts;
    if (on_start) on_start(request.task_id);
    if (!start_results.empty()) {
      absl::StatusOr<std::string> r = start_results.front();
      start_results.erase(start_results.begin());
      return r;
    }
    return std::string("p-") + request.task_id;
  }
  absl::StatusOr<backends::PollResult> Poll(absl::string_view id) override {
    ++polls;
    if (on_poll) on_poll();
    if (!poll_results.empty()) {
      absl::StatusOr<backends::PollResult> r = poll_results.front();
      poll_results.erase(poll_results.begin());
      return r;
    }
    backends::PollResult done;
    done.state = backends::ProviderState::kSucceeded;
    done.status_text = "SUCCEEDED";
    done.output_urls = {"https://example.invalid/out.mp4"};
    return done;
  }
  absl::Status Cancel(absl::string_view id) override {
    ++cancels;
    return absl::OkStatus();
  }
  absl::Status FetchOutput(absl::string_view id, const std::vector<std::string>& urls,
                           backends::OutputSink& sink) override {
    ++fetches;
    return sink.Write("not really an mp4, but bytes");
  }

  backends::Capabilities caps_;
  std::function<void(const std::string&)> on_start;  // runs inside Start
  std::function<void()> on_poll;                      // runs inside Poll
  std::vector<absl::StatusOr<std::string>> start_results;
  std::vector<absl::StatusOr<backends::PollResult>> poll_results;
  int starts = 0, polls = 0, cancels = 0, fetches = 0;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(int max_concurrency = 2, absl::Duration min_interval = absl::ZeroDuration()) {
    engine_.reset();
    store_.reset();
    store::SqliteStoreOptions options;
    options.data_dir = tmp_.path() + "/data";
    options.clock = &clock_;
    auto opened = store::SqliteTaskStore::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);

    std::vector<EngineBackend> backends;
    backends::BackendConfig mock_config;
    mock_config.name = "mock";
    mock_config.max_concurrency = max_concurrency;
    mock_config.min_submit_interval = min_interval;
    mock_config.poll_interval = absl::Seconds(6);
    auto mock = std::make_unique<backends::MockBackend>(mock_config, clock_);
    mock_ = mock.get();
    backends.push_back(EngineBackend{mock_config, std::move(mock)});
    backends::BackendConfig scripted_config;
    scripted_config.name = "scripted";
    scripted_config.max_concurrency = max_concurrency;
    scripted_config.poll_interval = scripted_poll_interval_;
    scripted_config.poll_jitter = scripted_poll_jitter_;
    auto scripted = std::make_unique<ScriptedBackend>();
    scripted_ = scripted.get();
    scripted_->on_poll = [this] { poll_times_.push_back(clock_.Now()); };
    backends.push_back(EngineBackend{scripted_config, std::move(scripted)});

    EngineOptions engine_options;
    engine_options.owner = "test-owner";
    engine_options.output_dir = tmp_.path() + "/out";
    engine_options.retry.initial_backoff = absl::Seconds(2);
    engine_options.retry.max_backoff = absl::Seconds(60);
    engine_options.retry.max_attempts = 3;
    engine_options.claim_interval = claim_interval_;
    engine_ = std::make_unique<Engine>(engine_options, *store_, std::move(backends), clock_, rng_,
                                       executor_, hub_);
    ASSERT_TRUE(engine_->Recover().ok());
  }

  // Stores a QUEUED task for `backend` with labels; returns its id.
  std::string Submit(const std::map<std::string, std::string>& labels = {},
                     const std::string& backend = "mock", int priority = 0, int seed = 0) {
    store::NewTask nt = testing::MockNewTask(seed, labels, backend, priority);
    std::vector<store::NewTask> tasks;
    tasks.push_back(std::move(nt));
    absl::Notification done;
    std::string id;
    engine_->SubmitAsync(std::move(tasks), [&](store::InsertResults results) {
      EXPECT_TRUE(results[0].ok()) << results[0].status();
      if (results[0].ok()) id = results[0]->task.id;
      done.Notify();
    });
    done.WaitForNotification();
    clock_.Advance(absl::Milliseconds(1));  // distinct create times
    return id;
  }

  Task Get(const std::string& id) {
    absl::StatusOr<Task> task = store_->Get(id);
    EXPECT_TRUE(task.ok()) << task.status();
    return task.ok() ? *task : Task();
  }

  // Moves time forward in steps, running due work at each.
  void RunFor(absl::Duration total, absl::Duration step = absl::Milliseconds(500)) {
    for (absl::Duration t; t <= total; t += step) {
      engine_->RunOnce();
      clock_.Advance(step);
    }
    engine_->RunOnce();
  }

  testing::TempDir tmp_;
  FakeClock clock_;
  absl::Duration scripted_poll_interval_ = absl::Seconds(6);
  absl::Duration scripted_poll_jitter_ = absl::ZeroDuration();
  absl::Duration claim_interval_ = absl::ZeroDuration();
  std::vector<absl::Time> poll_times_;  // every Poll of the scripted backend, across Open()s
  std::mt19937_64 rng_{42};
  InlineExecutor executor_;
  WatchHub hub_;
  std::unique_ptr<store::SqliteTaskStore> store_;
  backends::MockBackend* mock_ = nullptr;
  ScriptedBackend* scripted_ = nullptr;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, HappyPathEndsSucceededWithTheOutputOnDisk) {
  std::string id = Submit();
  engine_->RunOnce();
  EXPECT_EQ(Get(id).state, TaskState::kRunning);
  EXPECT_EQ(mock_->CreateCount(id), 1);
  RunFor(absl::Seconds(7));
  Task task = Get(id);
  ASSERT_EQ(task.state, TaskState::kSucceeded) << task.error.message;
  EXPECT_EQ(task.output_path, tmp_.path() + "/out/shot_video.mp4");
  EXPECT_GT(task.output_size_bytes, 1000);
  EXPECT_EQ(task.output_sha256.size(), 64u);
  EXPECT_EQ(mock_->CreateCount(id), 1);
  EXPECT_EQ(engine_->InFlight("mock"), 0);
}

TEST_F(EngineTest, TasksSubmittedWithinTheClaimIntervalAreClaimedTogether) {
  claim_interval_ = absl::Milliseconds(50);
  Open(8);
  std::string first = Submit({}, "mock", 0, 1);
  engine_->RunOnce();  // nothing claimed before: at once
  const absl::Time claimed = clock_.Now();
  EXPECT_EQ(Get(first).state, TaskState::kRunning);
  std::string a = Submit({}, "mock", 0, 2);
  std::string b = Submit({}, "mock", 0, 3);
  // The queue ran dry 2 ms ago: gathering, with a wake-up for the claim.
  EXPECT_LE(engine_->RunOnce(), claimed + absl::Milliseconds(50));
  EXPECT_EQ(Get(a).state, TaskState::kQueued);
  EXPECT_EQ(Get(b).state, TaskState::kQueued);
  clock_.Advance(claimed + absl::Milliseconds(50) - clock_.Now());
  engine_->RunOnce();
  EXPECT_EQ(Get(a).state, TaskState::kRunning);
  EXPECT_EQ(Get(b).state, TaskState::kRunning);
  EXPECT_EQ(engine_->InFlight("mock"), 3);
}

TEST_F(EngineTest, PollsNoMoreOftenThanThePollInterval) {
  std::string id = Submit({{"mock.latency_ms", "60000"}});
  engine_->RunOnce();
  int polls_before = 0;
  // 59 s of fake time at 100 ms steps: at most 59/6 polls.
  for (int i = 0; i < 590; ++i) {
    clock_.Advance(absl::Milliseconds(100));
    engine_->RunOnce();
  }
  (void)polls_before;
  Task task = Get(id);
  EXPECT_EQ(task.state, TaskState::kRunning);
  EXPECT_NEAR(task.progress, 0.9, 0.11);
  RunFor(absl::Seconds(13));
  EXPECT_EQ(Get(id).state, TaskState::kSucceeded);
}

backends::PollResult StillRunning() {
  backends::PollResult running;
  running.state = backends::ProviderState::kRunning;
  running.status_text = "RUNNING";
  return running;
}

// The smallest gap between two consecutive polls in `times`.
absl::Duration SmallestGap(const std::vector<absl::Time>& times) {
  absl::Duration smallest = absl::InfiniteDuration();
  for (size_t i = 1; i < times.size(); ++i) smallest = std::min(smallest, times[i] - times[i - 1]);
  return smallest;
}

TEST_F(EngineTest, JitterNeverShortensThePollInterval) {
  scripted_poll_interval_ = absl::Seconds(5);
  scripted_poll_jitter_ = absl::Milliseconds(1500);
  Open();
  std::string id = Submit({}, "scripted");
  for (int i = 0; i < 200; ++i) scripted_->poll_results.push_back(StillRunning());
  RunFor(absl::Minutes(15), absl::Milliseconds(100));
  EXPECT_EQ(Get(id).state, TaskState::kRunning);
  ASSERT_GT(poll_times_.size(), 100u);
  EXPECT_GE(SmallestGap(poll_times_), absl::Seconds(5));
  absl::Duration largest = absl::ZeroDuration();
  for (size_t i = 1; i < poll_times_.size(); ++i) {
    largest = std::max(largest, poll_times_[i] - poll_times_[i - 1]);
  }
  EXPECT_LE(largest, absl::Milliseconds(6600));  // interval + jitter + one step
  EXPECT_GT(largest, absl::Milliseconds(6000)) << "the jitter should be used";
}

TEST_F(EngineTest, NoTaskIsPolledTwiceWithinTheIntervalAcrossRetriesAndRecovery) {
  // A jitter larger than the interval, as with --runway_poll_interval=1s.
  scripted_poll_interval_ = absl::Seconds(1);
  scripted_poll_jitter_ = absl::Milliseconds(1500);
  Open();
  std::string id = Submit({}, "scripted");
  auto script = [&] {
    for (int i = 0; i < 30; ++i) {
      scripted_->poll_results.push_back(StillRunning());
      scripted_->poll_results.push_back(absl::UnavailableError("503 from the provider"));
    }
    for (int i = 0; i < 30; ++i) scripted_->poll_results.push_back(StillRunning());
  };
  script();
  RunFor(absl::Seconds(40), absl::Milliseconds(10));
  ASSERT_EQ(Get(id).state, TaskState::kRunning) << Get(id).error.message;
  // A restart right after a poll: the new process may not poll at once.
  size_t before = poll_times_.size();
  while (poll_times_.size() == before) {
    clock_.Advance(absl::Milliseconds(10));
    engine_->RunOnce();
  }
  Open();
  script();
  RunFor(absl::Seconds(40), absl::Milliseconds(10));
  ASSERT_EQ(Get(id).state, TaskState::kRunning) << Get(id).error.message;
  EXPECT_GT(poll_times_.size(), 30u);
  EXPECT_GE(SmallestGap(poll_times_), absl::Seconds(1));
  EXPECT_EQ(scripted_->starts, 0);
}

TEST_F(EngineTest, ConcurrencyCapHoldsAndQueuedTasksSayWhy) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Submit({{"mock.latency_ms", "30000"}}, "mock", 0, i));
  engine_->RunOnce();
  int running = 0;
  for (const std::string& id : ids) running += Get(id).state == TaskState::kRunning ? 1 : 0;
  EXPECT_EQ(running, 2);
  EXPECT_EQ(engine_->InFlight("mock"), 2);
  EXPECT_EQ(Get(ids[4]).state, TaskState::kQueued);
  EXPECT_THAT(engine_->DescribeWait(Get(ids[4])), HasSubstr("2 of 2 running"));
  RunFor(absl::Seconds(120), absl::Seconds(1));
  for (const std::string& id : ids) {
    EXPECT_EQ(Get(id).state, TaskState::kSucceeded);
    EXPECT_EQ(mock_->CreateCount(id), 1);
  }
}

TEST_F(EngineTest, PriorityFirstThenFifo) {
  Open(/*max_concurrency=*/1);
  std::string low = Submit({{"mock.latency_ms", "1000"}}, "mock", 0, 1);
  std::string high = Submit({{"mock.latency_ms", "1000"}}, "mock", 5, 2);
  std::string low2 = Submit({{"mock.latency_ms", "1000"}}, "mock", 0, 3);
  engine_->RunOnce();
  EXPECT_EQ(Get(high).state, TaskState::kRunning);
  EXPECT_EQ(Get(low).state, TaskState::kQueued);
  RunFor(absl::Seconds(8), absl::Seconds(1));
  EXPECT_EQ(Get(high).state, TaskState::kSucceeded);
  EXPECT_NE(Get(low).state, TaskState::kQueued);
  EXPECT_EQ(Get(low2).state, TaskState::kQueued);
}

TEST_F(EngineTest, MinimumIntervalBetweenCreates) {
  Open(/*max_concurrency=*/10, /*min_interval=*/absl::Seconds(2));
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(Submit({{"mock.latency_ms", "600000"}}, "mock", 0, i));
  engine_->RunOnce();
  EXPECT_EQ(mock_->TotalCreates(), 1);
  clock_.Advance(absl::Milliseconds(1999));
  engine_->RunOnce();
  EXPECT_EQ(mock_->TotalCreates(), 1);
  EXPECT_THAT(engine_->DescribeWait(Get(ids[2])), HasSubstr("minimum interval"));
  clock_.Advance(absl::Milliseconds(1));
  engine_->RunOnce();
  EXPECT_EQ(mock_->TotalCreates(), 2);
  clock_.Advance(absl::Seconds(2));
  engine_->RunOnce();
  EXPECT_EQ(mock_->TotalCreates(), 3);
}

TEST_F(EngineTest, TransientCreateErrorsRetryWithBackoffThenSucceed) {
  std::string id = Submit({{"mock.start_errors", "2"}});
  engine_->RunOnce();
  Task task = Get(id);
  EXPECT_EQ(task.state, TaskState::kQueued);
  EXPECT_EQ(task.attempt_count, 1);
  EXPECT_TRUE(task.error.retryable);
  EXPECT_EQ(task.error.code, kErrProviderUnavailable);
  EXPECT_GT(task.next_attempt_time, clock_.Now());
  EXPECT_LE(task.next_attempt_time, clock_.Now() + absl::Seconds(2));
  EXPECT_THAT(engine_->DescribeWait(task), HasSubstr("retrying"));
  RunFor(absl::Seconds(20), absl::Milliseconds(100));
  task = Get(id);
  EXPECT_EQ(task.state, TaskState::kSucceeded) << task.error.message;
  EXPECT_EQ(mock_->CreateCount(id), 1);  // failed creates never reached the provider
}

TEST_F(EngineTest, CreateErrorsExhaustAttemptsAndFailWithTheLastError) {
  std::string id = Submit({{"mock.start_errors", "10"}});
  RunFor(absl::Seconds(60), absl::Milliseconds(100));
  Task task = Get(id);
  EXPECT_EQ(task.state, TaskState::kFailed);
  EXPECT_EQ(task.attempt_count, 3);
  EXPECT_EQ(task.error.code, kErrProviderUnavailable);
  EXPECT_THAT(task.error.message, HasSubstr("gave up after 3 attempts"));
  EXPECT_EQ(mock_->CreateCount(id), 0);
}

TEST_F(EngineTest, RetryAfterIsHonoured) {
  std::string id = Submit({}, "scripted");
  scripted_->start_results.push_back(backends::WithRetryAfter(
      backends::WithHttpStatus(absl::ResourceExhaustedError("daily task limit reached"), 429),
      absl::Seconds(30)));
  engine_->RunOnce();
  Task task = Get(id);
  EXPECT_EQ(task.state, TaskState::kQueued);
  EXPECT_EQ(task.error.code, kErrRateLimited);
  EXPECT_EQ(task.error.provider_code, "HTTP_429");
  EXPECT_THAT(task.error.message, HasSubstr("daily task limit"));
  EXPECT_EQ(task.next_attempt_time, clock_.Now() + absl::Seconds(30));
  clock_.Advance(absl::Seconds(29));
  engine_->RunOnce();
  EXPECT_EQ(scripted_->starts, 1);
  clock_.Advance(absl::Seconds(1));
  engine_->RunOnce();
  EXPECT_EQ(scripted_->starts, 2);
  EXPECT_EQ(Get(id).state, TaskState::kRunning);
}

TEST_F(EngineTest, AmbiguousCreateIsNeverResent) {
  std::string id = Submit({{"mock.start_errors", "1"}, {"mock.start_error", "ambiguous"}});
  RunFor(absl::Seconds(30));
  Task task = Get(id);
  EXPECT_EQ(task.state, TaskState::kFailed);
  EXPECT_EQ(task.error.code, kErrSubmissionAmbiguous);
  EXPECT_FALSE(task.error.retryable);
  EXPECT_THAT(task.error.message, HasSubstr("not sent again"));
  EXPECT_EQ(mock_->CreateCount(id), 1);  // the provider did get it, once
}

TEST_F(EngineTest, PermanentCreateErrorFailsAtOnce) {
  std::string id = Submit({{"mock.start_errors", "1"}, {"mock.start_error", "invalid"}});
  engine_->RunOnce();
  Task task = Get(id);
  EXPECT_EQ(task.state, TaskState::kFailed);
  EXPECT_EQ(task.error.code, kErrProviderRejected);
  EXPECT_EQ(task.error.provider_code, "HTTP_400");
  EXPECT_EQ(task.attempt_count, 1);
}

TEST_F(EngineTest, ProviderFailureKeepsItsCodeAndIsNotRetried) {
  std::string id = Submit({{"mock.outcome", "fail"}, {"mock.failure_code", "SAFETY.INPUT.IMAGE"}});
  RunFor(absl::Seconds(10));
  Task task = Get(id);
  EXPECT_EQ(task.state, TaskState::kFailed);
  EXPECT_EQ(task.error.code, kErrProviderFailed);
  EXPECT_EQ(task.error.provider_code, "SAFETY.INPUT.IMAGE");
  EXPECT_EQ(mock_->CreateCount(id), 1);
}

TEST_F(EngineTest, ThrottledIsWaitingNotAnError) {
  std::string id = Submit({{"mock.outcome", "throttle_then_succeed"}, {"mock.latency_ms", "20000"}});
  engine_->RunOnce();
  clock_.Advance(absl::Seconds(6));
  engine_->RunOnce();
  Task task = Get(id);
  EXPECT_EQ(task.state, TaskState::kRunning);
  EXPECT_EQ(task.provider_status, "THROTTLED");
  EXPECT_TRUE(task.error.empty());
  RunFor(absl::Seconds(30));
  EXPECT_EQ(Get(id).state, TaskState::kSucceeded);
}

TEST_F(EngineTest, PollAndDownloadErrorsRetryWithoutASecondCreate) {
  std::string id = Submit({{"mock.poll_errors", "2"}, {"mock.fetch_errors", "2"}});
  RunFor(absl::Seconds(120), absl::Milliseconds(250));
  Task task = Get(id);
  EXPECT_EQ(task.state, TaskState::kSucceeded) << task.error.message;
  EXPECT_EQ(mock_->CreateCount(id), 1);
}

TEST_F(EngineTest, CancelInEveryState) {
  // QUEUED: cancelled at once, never created.
  Open(/*max_concurrency=*/1);
  std::string running = Submit({{"mock.latency_ms", "600000"}}, "mock", 0, 1);
  engine_->RunOnce();
  std::string queued = Submit({}, "mock", 0, 2);
  VT_ASSERT_OK_AND_ASSIGN(Task q, engine_->Cancel(queued));
  EXPECT_EQ(q.state, TaskState::kCancelled);
  EXPECT_FALSE(q.provider_cancel_pending);
  // RUNNING: cancelled here and at the provider, once.
  VT_ASSERT_OK_AND_ASSIGN(Task r, engine_->Cancel(running));
  EXPECT_EQ(r.state, TaskState::kCancelled);
  engine_->RunOnce();
  Task after = Get(running);
  EXPECT_FALSE(after.provider_cancel_pending);
  EXPECT_EQ(mock_->CancelCount(after.provider_task_id), 1);
  EXPECT_EQ(engine_->InFlight("mock"), 0);
  RunFor(absl::Seconds(20));
  EXPECT_EQ(Get(running).state, TaskState::kCancelled);
  EXPECT_EQ(Get(queued).state, TaskState::kCancelled);
  EXPECT_EQ(mock_->CreateCount(queued), 0);
  // Terminal: refused.
  EXPECT_THAT(engine_->Cancel(running), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                 HasSubstr("already CANCELLED")));
  EXPECT_THAT(engine_->Cancel("01ARZ3NDEKTSV4RRFFQ69G5FAV"),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST_F(EngineTest, CancelWhileSubmittingCancelsAtTheProviderOnceTheIdIsKnown) {
  std::string id = Submit({}, "scripted");
  // The cancel arrives while the create request is on its way.
  absl::StatusOr<Task> cancelled;
  scripted_->on_start = [&](const std::string& task_id) {
    EXPECT_EQ(Get(task_id).state, TaskState::kSubmitting);
    cancelled = engine_->Cancel(task_id);
  };
  engine_->RunOnce();
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state, TaskState::kCancelled);
  EXPECT_EQ(scripted_->starts, 1);
  engine_->RunOnce();
  Task task = Get(id);
  EXPECT_EQ(task.state, TaskState::kCancelled);
  EXPECT_EQ(task.provider_task_id, "p-" + id);  // recorded once known
  EXPECT_FALSE(task.provider_cancel_pending);
  EXPECT_EQ(scripted_->cancels, 1);
  EXPECT_EQ(engine_->InFlight("scripted"), 0);
  RunFor(absl::Seconds(20));
  EXPECT_EQ(scripted_->polls, 0);
  EXPECT_EQ(scripted_->starts, 1);
}

TEST_F(EngineTest, RecoveryAfterRestart) {
  // A RUNNING task, a SUBMITTING one and a DOWNLOADING one, as a crash left them.
  std::string running = Submit({{"mock.latency_ms", "10000"}}, "mock", 0, 1);
  engine_->RunOnce();
  ASSERT_EQ(Get(running).state, TaskState::kRunning);
  std::string submitting = Submit({}, "scripted", 0, 2);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> claimed,
                          store_->ClaimQueued("scripted", 1, clock_.Now(), "dead-process",
                                              clock_.Now() + absl::Seconds(60)));
  ASSERT_EQ(claimed.size(), 1u);
  std::string queued = Submit({}, "mock", -1, 3);
  int creates_before = mock_->TotalCreates();

  // The "crash": a new store and engine on the same files.
  Open();
  Task s = Get(submitting);
  EXPECT_EQ(s.state, TaskState::kFailed);
  EXPECT_EQ(s.error.code, kErrSubmissionAmbiguous);
  RunFor(absl::Seconds(30));
  EXPECT_EQ(Get(running).state, TaskState::kSucceeded);
  EXPECT_EQ(Get(queued).state, TaskState::kSucceeded);
  EXPECT_EQ(scripted_->starts, 0);                       // never re-sent
  EXPECT_EQ(mock_->TotalCreates(), 1);                   // this process created only `queued`
  EXPECT_EQ(creates_before, 1);
}

TEST_F(EngineTest, RecoveryOfDownloadingAndPendingProviderCancels) {
  // DOWNLOADING when the process died: the output is fetched again, the
  // provider task is not created again.
  std::string downloading = Submit({{"mock.latency_ms", "600000"}}, "mock", 0, 1);
  engine_->RunOnce();
  Task d = Get(downloading);
  ASSERT_EQ(d.state, TaskState::kRunning);
  d.state = TaskState::kDownloading;
  d.output_urls = {"mock://expired-url"};
  VT_ASSERT_OK_AND_ASSIGN(Task stored_d, store_->Update(d));
  // CANCELLED here, not yet at the provider.
  std::string cancelling = Submit({{"mock.latency_ms", "600000"}}, "mock", 0, 2);
  engine_->RunOnce();
  Task c = Get(cancelling);
  ASSERT_EQ(c.state, TaskState::kRunning);
  c.state = TaskState::kCancelled;
  c.provider_cancel_pending = true;
  c.lease_owner.clear();
  VT_ASSERT_OK_AND_ASSIGN(Task stored_c, store_->Update(c));
  const std::string cancel_provider_id = stored_c.provider_task_id;

  Open();
  RunFor(absl::Seconds(5));
  Task after_d = Get(downloading);
  EXPECT_EQ(after_d.state, TaskState::kSucceeded) << after_d.error.message;
  EXPECT_GT(after_d.output_size_bytes, 0);
  Task after_c = Get(cancelling);
  EXPECT_EQ(after_c.state, TaskState::kCancelled);
  EXPECT_FALSE(after_c.provider_cancel_pending);
  EXPECT_EQ(mock_->CancelCount(cancel_provider_id), 1);
  EXPECT_EQ(mock_->TotalCreates(), 0);  // this process created nothing
}

TEST_F(EngineTest, TasksOfADeadProcessAreTakenOverWhenTheirLeaseExpires) {
  // Another process (sharing the store) created this one and died.
  std::string id = Submit({{"mock.latency_ms", "1000"}}, "mock", 0, 1);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> claimed,
                          store_->ClaimQueued("mock", 1, clock_.Now(), "dead-replica",
                                              clock_.Now() + absl::Seconds(60)));
  ASSERT_EQ(claimed.size(), 1u);
  Task running = claimed[0];
  running.state = TaskState::kRunning;
  running.provider_task_id = *mock_->Start(MakeStartRequest(running, ""));
  VT_ASSERT_OK_AND_ASSIGN(Task stored, store_->Update(running));
  RunFor(absl::Seconds(50), absl::Seconds(1));
  EXPECT_EQ(Get(id).state, TaskState::kRunning) << "taken while the lease was live";
  RunFor(absl::Seconds(60), absl::Seconds(1));
  Task done = Get(id);
  EXPECT_EQ(done.state, TaskState::kSucceeded) << done.error.message;
  EXPECT_EQ(mock_->CreateCount(id), 1);  // polled again, never re-created
}

TEST_F(EngineTest, AWatcherThatNeverReadsDoesNotBlockTheEngine) {
  std::string id = Submit();
  std::atomic<int> calls{0};
  uint64_t token = hub_.Subscribe(id, [&](const TaskChangePtr&) { ++calls; });
  RunFor(absl::Seconds(10));
  EXPECT_EQ(Get(id).state, TaskState::kSucceeded);
  EXPECT_GE(calls.load(), 3);  // SUBMITTING, RUNNING, DOWNLOADING, SUCCEEDED
  hub_.Unsubscribe(id, token);
  EXPECT_EQ(hub_.size(), 0);
}

TEST_F(EngineTest, WatchersOfOneChangeShareOneCopyAndOneDerivedValue) {
  std::string id = Submit();
  absl::Mutex mu;
  std::vector<TaskChangePtr> seen[2];
  std::vector<std::shared_ptr<const std::string>> derived[2];
  int builds = 0;
  uint64_t tokens[2];
  for (int w = 0; w < 2; ++w) {
    tokens[w] = hub_.Subscribe(id, [&, w](const TaskChangePtr& change) {
      auto text = change->Shared<std::string>([&](const Task& task) {
        ++builds;
        return absl::StrCat(task.id, "@", task.version);
      });
      absl::MutexLock lock(&mu);
      seen[w].push_back(change);
      derived[w].push_back(std::move(text));
    });
  }
  RunFor(absl::Seconds(10));
  for (uint64_t token : tokens) hub_.Unsubscribe(id, token);
  ASSERT_EQ(Get(id).state, TaskState::kSucceeded);
  absl::MutexLock lock(&mu);
  ASSERT_GE(seen[0].size(), 3u);
  ASSERT_EQ(seen[0].size(), seen[1].size());
  for (size_t i = 0; i < seen[0].size(); ++i) {
    EXPECT_EQ(seen[0][i], seen[1][i]) << "change " << i << " was copied per watcher";
    EXPECT_EQ(derived[0][i], derived[1][i]) << "change " << i << " was derived per watcher";
    EXPECT_EQ(*derived[0][i], absl::StrCat(id, "@", seen[0][i]->task().version));
  }
  EXPECT_EQ(builds, static_cast<int>(seen[0].size()));
  EXPECT_EQ(seen[0].back()->task().state, TaskState::kSucceeded);
}

TEST(RetryPolicyTest, FullJitterWithinTheExponentialCeiling) {
  RetryPolicy policy;
  policy.initial_backoff = absl::Seconds(1);
  policy.max_backoff = absl::Seconds(10);
  std::mt19937_64 rng(1);
  for (int attempt = 1; attempt <= 8; ++attempt) {
    absl::Duration ceiling = std::min(absl::Seconds(10), absl::Seconds(1) * (1 << (attempt - 1)));
    absl::Duration most = absl::ZeroDuration();
    for (int i = 0; i < 200; ++i) {
      absl::Duration d = policy.Backoff(attempt, std::nullopt, rng);
      EXPECT_GE(d, absl::Milliseconds(10));
      EXPECT_LE(d, ceiling);
      most = std::max(most, d);
    }
    EXPECT_GT(most, ceiling * 0.8) << "jitter should use the whole range";
  }
  EXPECT_EQ(policy.Backoff(1, absl::Seconds(45), rng), absl::Seconds(45));
}

TEST(RetryPolicyTest, WhatIsRetryable) {
  RetryPolicy policy;
  policy.max_attempts = 5;
  EXPECT_TRUE(policy.ShouldRetry(absl::UnavailableError("503"), 1));
  EXPECT_TRUE(policy.ShouldRetry(absl::ResourceExhaustedError("429"), 4));
  EXPECT_FALSE(policy.ShouldRetry(absl::ResourceExhaustedError("429"), 5));
  EXPECT_FALSE(policy.ShouldRetry(absl::InvalidArgumentError("400"), 1));
  EXPECT_FALSE(policy.ShouldRetry(absl::UnauthenticatedError("401"), 1));
  EXPECT_FALSE(policy.ShouldRetry(absl::NotFoundError("404"), 1));
}

TEST(RateLimiterTest, SpacesAcquisitions) {
  RateLimiter limiter(absl::Seconds(2));
  absl::Time t0 = absl::FromUnixSeconds(100);
  EXPECT_TRUE(limiter.TryAcquire(t0));
  EXPECT_FALSE(limiter.TryAcquire(t0 + absl::Seconds(1)));
  EXPECT_EQ(limiter.NextFree(), t0 + absl::Seconds(2));
  EXPECT_TRUE(limiter.TryAcquire(t0 + absl::Seconds(2)));
}

}  // namespace
}  // namespace videotask::engine
