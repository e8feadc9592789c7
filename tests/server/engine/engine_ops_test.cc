// Operating the queue through the engine, deterministically (fake clock,
// inline executor, a real SQLite store, the mock backend scripted by
// labels): pausing and resuming a backend, retrying and adopting tasks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "backends/mock/mock_backend.h"
#include "common/clock.h"
#include "common/executor.h"
#include "common/sha256.h"
#include "server/engine/engine.h"
#include "server/store/sqlite/sqlite_task_store.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace videotask::engine {
namespace {

using ::testing::HasSubstr;
using ::videotask::testing::StatusIs;

// One engine (a "process") over a shared store, with its own mock backend.
struct Process {
  Process(const std::string& owner, store::TaskStore& store, const Clock& clock,
          const std::string& ledger, const std::string& out_dir) {
    backends::BackendConfig config;
    config.name = "mock";
    config.max_concurrency = 4;
    config.poll_interval = absl::Seconds(6);
    auto backend = std::make_unique<backends::MockBackend>(config, clock,
                                                           backends::MockOptions{ledger});
    mock = backend.get();
    std::vector<EngineBackend> backends;
    backends.push_back(EngineBackend{config, std::move(backend)});
    EngineOptions options;
    options.owner = owner;
    options.output_dir = out_dir;
    options.retry.initial_backoff = absl::Seconds(2);
    options.retry.max_attempts = 3;
    options.pause_refresh = absl::Seconds(1);
    engine = std::make_unique<Engine>(options, store, std::move(backends), clock, rng, executor,
                                      hub);
  }

  std::mt19937_64 rng{7};
  InlineExecutor executor;
  WatchHub hub;
  backends::MockBackend* mock = nullptr;
  std::unique_ptr<Engine> engine;
};

class EngineOpsTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenStore(); }

  void OpenStore() {
    a_.reset();
    b_.reset();
    store_.reset();
    store::SqliteStoreOptions options;
    options.data_dir = tmp_.path() + "/data";
    options.clock = &clock_;
    auto opened = store::SqliteTaskStore::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);
    a_ = std::make_unique<Process>("process-a", *store_, clock_, Ledger(), tmp_.path() + "/out");
    ASSERT_TRUE(a_->engine->Recover().ok());
  }

  void StartSecondProcess() {
    b_ = std::make_unique<Process>("process-b", *store_, clock_, Ledger(), tmp_.path() + "/out");
    ASSERT_TRUE(b_->engine->Recover().ok());
  }

  std::string Ledger() const { return tmp_.path() + "/ledger"; }

  std::string Submit(Engine& engine, const std::map<std::string, std::string>& labels = {}) {
    store::NewTask nt = testing::MockNewTask(++seed_, labels);
    std::vector<store::NewTask> tasks;
    tasks.push_back(std::move(nt));
    absl::Notification done;
    std::string id;
    engine.SubmitAsync(std::move(tasks), [&](store::InsertResults results) {
      EXPECT_TRUE(results[0].ok()) << results[0].status();
      if (results[0].ok()) id = results[0]->task.id;
      done.Notify();
    });
    done.WaitForNotification();
    clock_.Advance(absl::Milliseconds(1));
    return id;
  }

  Task Get(const std::string& id) {
    absl::StatusOr<Task> task = store_->Get(id);
    EXPECT_TRUE(task.ok()) << task.status();
    return task.ok() ? *task : Task();
  }

  // Moves time forward in steps, running every process's due work.
  void RunFor(absl::Duration total, absl::Duration step = absl::Milliseconds(500)) {
    for (absl::Duration t; t <= total; t += step) {
      if (a_) a_->engine->RunOnce();
      if (b_) b_->engine->RunOnce();
      clock_.Advance(step);
    }
  }

  // The provider task ids the mock created for `task_id` (its ledger).
  std::vector<std::string> ProviderTasksOf(const std::string& task_id) {
    std::ifstream in(Ledger());
    std::vector<std::string> ids;
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (parts.size() == 2 && parts[0] == task_id) ids.push_back(parts[1]);
    }
    return ids;
  }

  testing::TempDir tmp_;
  FakeClock clock_;
  int seed_ = 0;
  std::unique_ptr<store::SqliteTaskStore> store_;
  std::unique_ptr<Process> a_;
  std::unique_ptr<Process> b_;
};

const std::map<std::string, std::string> kAmbiguousOnce = {{"mock.start_errors", "1"},
                                                           {"mock.start_error", "ambiguous"}};

TEST_F(EngineOpsTest, PausedBackendQueuesButSendsNothingWhileRunningTasksFinish) {
  Engine& engine = *a_->engine;
  std::string running = Submit(engine, {{"mock.latency_ms", "20000"}});
  engine.RunOnce();
  ASSERT_EQ(Get(running).state, TaskState::kRunning);

  VT_ASSERT_OK_AND_ASSIGN(store::BackendPause pause,
                          engine.Pause("mock", "provider outage", "ops-team"));
  EXPECT_EQ(pause.since, clock_.Now());
  std::string queued = Submit(engine);
  RunFor(absl::Seconds(30));
  // The task already at the provider was polled and downloaded...
  EXPECT_EQ(Get(running).state, TaskState::kSucceeded);
  // ...the new one waits, and says why.
  Task waiting = Get(queued);
  EXPECT_EQ(waiting.state, TaskState::kQueued);
  EXPECT_EQ(a_->mock->CreateCount(queued), 0);
  std::string why = engine.DescribeWait(waiting);
  EXPECT_THAT(why, HasSubstr("backend mock is paused"));
  EXPECT_THAT(why, HasSubstr("by ops-team: provider outage"));

  VT_ASSERT_OK(engine.Resume("mock"));
  EXPECT_FALSE(engine.PauseOf("mock").has_value());
  engine.RunOnce();
  EXPECT_EQ(a_->mock->CreateCount(queued), 1);
  RunFor(absl::Seconds(8));
  EXPECT_EQ(Get(queued).state, TaskState::kSucceeded);
}

TEST_F(EngineOpsTest, PauseHoldsForAnotherProcessAndAcrossARestart) {
  StartSecondProcess();
  VT_ASSERT_OK(a_->engine->Pause("mock", "maintenance", "ops").status());
  b_->engine->RunOnce();  // reads the pauses
  ASSERT_TRUE(b_->engine->PauseOf("mock").has_value());
  EXPECT_EQ(b_->engine->PauseOf("mock")->reason, "maintenance");
  std::string id = Submit(*b_->engine);
  RunFor(absl::Seconds(5));
  EXPECT_EQ(Get(id).state, TaskState::kQueued);
  EXPECT_EQ(a_->mock->CreateCount(id) + b_->mock->CreateCount(id), 0);

  OpenStore();  // a restart: both processes gone, a new one on the same file
  a_->engine->RunOnce();
  ASSERT_TRUE(a_->engine->PauseOf("mock").has_value());
  RunFor(absl::Seconds(3));
  EXPECT_EQ(Get(id).state, TaskState::kQueued);

  StartSecondProcess();
  b_->engine->RunOnce();
  VT_ASSERT_OK(b_->engine->Resume("mock"));
  // Process a sees the resume at its next read of the pauses.
  RunFor(absl::Seconds(2));
  EXPECT_FALSE(a_->engine->PauseOf("mock").has_value());
  EXPECT_EQ(a_->mock->CreateCount(id) + b_->mock->CreateCount(id), 1);
}

TEST_F(EngineOpsTest, PauseOfAnUnknownBackendNamesIt) {
  EXPECT_THAT(a_->engine->Pause("nope", "", "ops").status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("\"nope\" is not enabled")));
  EXPECT_THAT(a_->engine->Resume("nope"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("enabled: mock")));
}

TEST_F(EngineOpsTest, RetryRunsAFailedTaskAgainUnderItsId) {
  Engine& engine = *a_->engine;
  std::string id = Submit(engine, {{"mock.start_errors", "1"}, {"mock.start_error", "invalid"}});
  RunFor(absl::Seconds(1));
  Task failed = Get(id);
  ASSERT_EQ(failed.state, TaskState::kFailed);
  VT_ASSERT_OK(engine.Retry(id, RetryRequest()).status());
  Task queued = Get(id);
  EXPECT_EQ(queued.state, TaskState::kQueued);
  ASSERT_EQ(queued.attempts.size(), 1u);
  EXPECT_EQ(queued.attempts[0].state, TaskState::kFailed);
  EXPECT_EQ(queued.attempts[0].error.code, failed.error.code);
  RunFor(absl::Seconds(8));
  Task done = Get(id);
  EXPECT_EQ(done.state, TaskState::kSucceeded) << done.error.message;
  EXPECT_EQ(done.attempts.size(), 1u);
  EXPECT_EQ(a_->mock->CreateCount(id), 1);  // the invalid create made nothing

  EXPECT_THAT(engine.Retry(id, RetryRequest()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("SUCCEEDED")));
  std::string running = Submit(engine, {{"mock.latency_ms", "60000"}});
  engine.RunOnce();
  EXPECT_THAT(engine.Retry(running, RetryRequest()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("RUNNING")));
  EXPECT_THAT(engine.Retry("01J0Z3YV6Q8W3C2M5N7P9R1T4X", RetryRequest()),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST_F(EngineOpsTest, AmbiguousRetryNeedsConfirmationThenCreatesAgain) {
  Engine& engine = *a_->engine;
  std::string id = Submit(engine, kAmbiguousOnce);
  RunFor(absl::Seconds(1));
  ASSERT_EQ(Get(id).error.code, kErrSubmissionAmbiguous);
  EXPECT_THAT(engine.Retry(id, RetryRequest()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("confirm_possible_duplicate")));
  EXPECT_EQ(Get(id).state, TaskState::kFailed);  // nothing changed
  RetryRequest confirm;
  confirm.confirm_possible_duplicate = true;
  VT_ASSERT_OK(engine.Retry(id, confirm).status());
  RunFor(absl::Seconds(8));
  EXPECT_EQ(Get(id).state, TaskState::kSucceeded);
  EXPECT_EQ(a_->mock->CreateCount(id), 2);  // paid twice, as confirmed
}

TEST_F(EngineOpsTest, AdoptFollowsTheProviderTaskWithoutCreatingOne) {
  Engine& engine = *a_->engine;
  std::string id = Submit(engine, kAmbiguousOnce);
  RunFor(absl::Seconds(1));
  ASSERT_EQ(Get(id).error.code, kErrSubmissionAmbiguous);
  std::vector<std::string> at_provider = ProviderTasksOf(id);
  ASSERT_EQ(at_provider.size(), 1u);

  RetryRequest adopt;
  adopt.adopt_provider_task_id = at_provider[0];
  VT_ASSERT_OK_AND_ASSIGN(Task adopted, engine.Retry(id, adopt));
  EXPECT_EQ(adopted.state, TaskState::kRunning);
  EXPECT_EQ(adopted.provider_task_id, at_provider[0]);
  EXPECT_EQ(adopted.lease_owner, "process-a");
  RunFor(absl::Seconds(8));
  Task done = Get(id);
  ASSERT_EQ(done.state, TaskState::kSucceeded) << done.error.message;
  EXPECT_GT(done.output_size_bytes, 0);
  EXPECT_EQ(a_->mock->TotalCreates(), 1);  // never created again
  ASSERT_EQ(done.attempts.size(), 1u);
  EXPECT_EQ(done.attempts[0].error.code, kErrSubmissionAmbiguous);
  EXPECT_EQ(a_->engine->InFlight("mock"), 0);
}

TEST_F(EngineOpsTest, AnAdoptedTaskIsCancelledAtTheProvider) {
  Engine& engine = *a_->engine;
  std::string id = Submit(engine, {{"mock.start_errors", "1"},
                                   {"mock.start_error", "ambiguous"},
                                   {"mock.latency_ms", "60000"}});
  RunFor(absl::Seconds(1));
  std::vector<std::string> at_provider = ProviderTasksOf(id);
  ASSERT_EQ(at_provider.size(), 1u);
  RetryRequest adopt;
  adopt.adopt_provider_task_id = at_provider[0];
  VT_ASSERT_OK(engine.Retry(id, adopt).status());
  RunFor(absl::Seconds(7));
  EXPECT_EQ(Get(id).state, TaskState::kRunning);
  VT_ASSERT_OK(engine.Cancel(id).status());
  RunFor(absl::Seconds(1));
  EXPECT_EQ(a_->mock->CancelCount(at_provider[0]), 1);
  EXPECT_FALSE(Get(id).provider_cancel_pending);
  EXPECT_EQ(a_->mock->TotalCreates(), 1);
}

TEST_F(EngineOpsTest, AdoptingAnUnknownProviderTaskFailsTheTryNotTheServer) {
  Engine& engine = *a_->engine;
  std::string id = Submit(engine, kAmbiguousOnce);
  RunFor(absl::Seconds(1));
  RetryRequest adopt;
  adopt.adopt_provider_task_id = "no-such-task";
  VT_ASSERT_OK(engine.Retry(id, adopt).status());
  RunFor(absl::Seconds(8));
  Task task = Get(id);
  EXPECT_EQ(task.state, TaskState::kFailed);
  EXPECT_EQ(task.provider_task_id, "no-such-task");
  EXPECT_EQ(task.attempts.size(), 1u);
  EXPECT_EQ(a_->mock->TotalCreates(), 1);
}

}  // namespace
}  // namespace videotask::engine
