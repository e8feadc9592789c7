// Retention, DeleteTask and disk-full safety in the engine, driven on a
// fake clock with an inline executor, a real SQLite store in a temp dir,
// the mock backend and a fake of the free-space probe.
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "backends/mock/mock_backend.h"
#include "common/clock.h"
#include "common/disk_space.h"
#include "common/executor.h"
#include "common/sha256.h"
#include "server/engine/engine.h"
#include "server/store/sqlite/sqlite_task_store.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace videotask::engine {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::videotask::testing::StatusIs;

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Free bytes per folder, set by the test; unknown folders have plenty.
class FakeDiskSpace final : public DiskSpace {
 public:
  absl::StatusOr<int64_t> FreeBytes(const std::string& path) const override {
    absl::MutexLock lock(&mu_);
    auto it = free_.find(path);
    return it == free_.end() ? int64_t{1} << 40 : it->second;
  }
  void Set(const std::string& path, int64_t bytes) {
    absl::MutexLock lock(&mu_);
    free_[path] = bytes;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, int64_t> free_ ABSL_GUARDED_BY(mu_);
};

class RetentionTest : public ::testing::Test {
 protected:
  void Open(EngineOptions options) {
    engine_.reset();
    store_.reset();
    store::SqliteStoreOptions store_options;
    store_options.data_dir = data_dir_;
    store_options.clock = &clock_;
    auto opened = store::SqliteTaskStore::Open(store_options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);
    backends::BackendConfig config;
    config.name = "mock";
    config.max_concurrency = 8;
    config.poll_interval = absl::Seconds(6);
    auto mock = std::make_unique<backends::MockBackend>(config, clock_);
    std::vector<EngineBackend> backends;
    backends.push_back(EngineBackend{config, std::move(mock)});
    options.owner = "test-owner";
    options.output_dir = out_dir_;
    options.data_dir = data_dir_;
    options.disk = &disk_;
    options.min_free_disk_bytes = 1000;
    options.disk_wait = absl::Seconds(30);
    engine_ = std::make_unique<Engine>(options, *store_, std::move(backends), clock_, rng_,
                                       executor_, hub_);
    ASSERT_TRUE(engine_->Recover().ok());
  }

  // Submits one task (mock backend); its status, and its id when stored.
  absl::Status Submit(std::string& id, const std::map<std::string, std::string>& labels = {}) {
    store::NewTask nt = testing::MockNewTask(++seed_, labels);
    std::vector<store::NewTask> tasks;
    tasks.push_back(std::move(nt));
    absl::Notification done;
    absl::Status status;
    engine_->SubmitAsync(std::move(tasks), [&](store::InsertResults results) {
      status = results[0].status();
      if (results[0].ok()) id = results[0]->task.id;
      done.Notify();
    });
    done.WaitForNotification();
    clock_.Advance(absl::Milliseconds(1));
    return status;
  }
  std::string SubmitOk(const std::map<std::string, std::string>& labels = {}) {
    std::string id;
    absl::Status status = Submit(id, labels);
    EXPECT_TRUE(status.ok()) << status;
    return id;
  }

  void RunFor(absl::Duration total, absl::Duration step = absl::Milliseconds(500)) {
    for (absl::Duration t; t <= total; t += step) {
      engine_->RunOnce();
      clock_.Advance(step);
    }
    engine_->RunOnce();
  }

  Task Get(const std::string& id) {
    absl::StatusOr<Task> task = store_->Get(id);
    EXPECT_TRUE(task.ok()) << task.status();
    return task.ok() ? *task : Task();
  }

  testing::TempDir tmp_;
  const std::string data_dir_ = tmp_.path() + "/data";
  const std::string out_dir_ = tmp_.path() + "/out";
  FakeClock clock_;
  FakeDiskSpace disk_;
  std::mt19937_64 rng_{7};
  InlineExecutor executor_;
  WatchHub hub_;
  int seed_ = 0;
  std::unique_ptr<store::SqliteTaskStore> store_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(RetentionTest, DeletesEndedTasksOnceOlderThanTheRetentionKeepingOutputs) {
  EngineOptions options;
  options.retention = absl::Hours(1);
  options.retention_interval = absl::Minutes(10);
  Open(options);
  const std::string done = SubmitOk();
  const std::string failed = SubmitOk({{"mock.outcome", "fail"}});
  RunFor(absl::Seconds(15));
  ASSERT_EQ(Get(done).state, TaskState::kSucceeded);
  ASSERT_EQ(Get(failed).state, TaskState::kFailed);
  const std::string output = Get(done).output_path;
  ASSERT_TRUE(Exists(output));
  const std::string running = SubmitOk({{"mock.latency_ms", "3600000"}});
  bool told = false;
  hub_.Subscribe(done, [](const TaskChangePtr&) {}, [&] { told = true; });

  clock_.Advance(absl::Minutes(40));  // ended 40 min ago: kept
  engine_->RunOnce();
  EXPECT_EQ(Get(done).state, TaskState::kSucceeded);

  clock_.Advance(absl::Minutes(30));  // 70 min: the next pass deletes them
  engine_->RunOnce();
  EXPECT_THAT(store_->Get(done), StatusIs(absl::StatusCode::kNotFound, HasSubstr(done)));
  EXPECT_THAT(store_->Get(failed), StatusIs(absl::StatusCode::kNotFound, HasSubstr(failed)));
  EXPECT_TRUE(told) << "a watcher of the deleted task was not told";
  EXPECT_EQ(Get(running).state, TaskState::kRunning);  // live tasks stay
  EXPECT_TRUE(Exists(output)) << "task retention must not touch output files";
}

TEST_F(RetentionTest, DeletesInBoundedBatches) {
  EngineOptions options;
  options.retention = absl::Hours(1);
  options.retention_interval = absl::Hours(100);  // only the explicit pass below
  options.retention_batch = 10;
  Open(options);
  std::vector<std::string> ids;
  for (int i = 0; i < 35; ++i) ids.push_back(SubmitOk({{"mock.outcome", "fail"}}));
  RunFor(absl::Seconds(60));
  for (const std::string& id : ids) ASSERT_EQ(Get(id).state, TaskState::kFailed);
  clock_.Advance(absl::Hours(2));
  const int64_t commits_before = store_->stats().commits;
  VT_ASSERT_OK_AND_ASSIGN(RetentionPass pass, engine_->RunRetention());
  EXPECT_EQ(pass.tasks_deleted, 35);
  // 10 + 10 + 10 + 5: four transactions (plus the vacuum's), not one.
  EXPECT_GE(store_->stats().commits - commits_before, 4);
  VT_ASSERT_OK_AND_ASSIGN(store::ListPage left, store_->List(store::ListQuery()));
  EXPECT_TRUE(left.tasks.empty());
}

TEST_F(RetentionTest, OutputRetentionRemovesFilesAndTheTaskSaysSo) {
  EngineOptions options;
  options.retention = absl::ZeroDuration();  // tasks are kept forever
  options.output_retention = absl::Hours(1);
  options.retention_interval = absl::Minutes(5);
  Open(options);
  const std::string id = SubmitOk();
  RunFor(absl::Seconds(15));
  Task task = Get(id);
  ASSERT_EQ(task.state, TaskState::kSucceeded);
  ASSERT_TRUE(Exists(task.output_path));
  clock_.Advance(absl::Minutes(30));
  engine_->RunOnce();
  EXPECT_TRUE(Exists(task.output_path));
  clock_.Advance(absl::Minutes(40));
  engine_->RunOnce();
  EXPECT_FALSE(Exists(task.output_path));
  Task after = Get(id);
  EXPECT_EQ(after.state, TaskState::kSucceeded);
  EXPECT_EQ(after.output_removed_time, clock_.Now());
  EXPECT_EQ(after.output_path, task.output_path);
  // Later passes leave it alone.
  clock_.Advance(absl::Hours(1));
  VT_ASSERT_OK_AND_ASSIGN(RetentionPass pass, engine_->RunRetention());
  EXPECT_EQ(pass.outputs_removed, 0);
}

TEST_F(RetentionTest, DeleteTaskOnlyForEndedTasksAndItsOutputOnRequest) {
  EngineOptions options;
  options.retention = absl::ZeroDuration();
  Open(options);
  EXPECT_THAT(engine_->Delete("01NOSUCHTASK0000000000000A", false),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  const std::string running = SubmitOk({{"mock.latency_ms", "3600000"}});
  const std::string keep_file = SubmitOk();
  const std::string drop_file = SubmitOk();
  RunFor(absl::Seconds(15));
  EXPECT_THAT(engine_->Delete(running, true),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("RUNNING"), HasSubstr("cancel it first"))));
  EXPECT_EQ(Get(running).state, TaskState::kRunning);

  const std::string kept_path = Get(keep_file).output_path;
  const std::string dropped_path = Get(drop_file).output_path;
  ASSERT_NE(kept_path, dropped_path);
  bool told = false;
  hub_.Subscribe(drop_file, [](const TaskChangePtr&) {}, [&] { told = true; });
  VT_ASSERT_OK(engine_->Delete(keep_file, false).status());
  VT_ASSERT_OK(engine_->Delete(drop_file, true).status());
  EXPECT_TRUE(told);
  EXPECT_TRUE(Exists(kept_path));
  EXPECT_FALSE(Exists(dropped_path));
  EXPECT_THAT(store_->Get(keep_file), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  EXPECT_THAT(engine_->Delete(drop_file, true),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST_F(RetentionTest, SubmitsAreRefusedWhileAFolderIsShortOfSpace) {
  Open(EngineOptions());
  std::string id;
  disk_.Set(data_dir_, 999);
  absl::Status refused = Submit(id);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted,
                                AllOf(HasSubstr("data folder"), HasSubstr("999 B free"),
                                      HasSubstr("1000 B required"),
                                      HasSubstr("--min_free_disk"))));
  disk_.Set(data_dir_, 5000);
  disk_.Set(out_dir_, 10);
  EXPECT_THAT(Submit(id), StatusIs(absl::StatusCode::kResourceExhausted,
                                   AllOf(HasSubstr("output folder"), HasSubstr("10 B free"))));
  VT_ASSERT_OK_AND_ASSIGN(store::ListPage page, store_->List(store::ListQuery()));
  EXPECT_TRUE(page.tasks.empty()) << "a refused submit stored a task";
  disk_.Set(out_dir_, 5000);
  VT_EXPECT_OK(Submit(id));
}

TEST_F(RetentionTest, DownloadsWaitForDiskSpaceAndNeverFailForIt) {
  Open(EngineOptions());
  const std::string id = SubmitOk({{"mock.latency_ms", "5000"}});
  engine_->RunOnce();
  ASSERT_EQ(Get(id).state, TaskState::kRunning);
  disk_.Set(out_dir_, 100);  // full before the download starts
  RunFor(absl::Minutes(10));  // many more than max_attempts disk waits
  Task waiting = Get(id);
  ASSERT_EQ(waiting.state, TaskState::kDownloading);
  EXPECT_EQ(waiting.error.code, kErrDiskFull);
  EXPECT_THAT(waiting.error.message, HasSubstr("output folder"));
  EXPECT_EQ(waiting.attempt_count, 0);
  disk_.Set(out_dir_, int64_t{1} << 30);
  RunFor(absl::Seconds(31));
  Task done = Get(id);
  EXPECT_EQ(done.state, TaskState::kSucceeded);
  EXPECT_TRUE(done.error.empty());
  EXPECT_TRUE(Exists(done.output_path));
}

}  // namespace
}  // namespace videotask::engine
