// Callers in the engine, driven deterministically (a fake clock, an inline
// executor, a real SQLite store in a temp dir, the mock backend): fair
// shares of a backend's slots and the per-caller QUEUED limit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::videotask::testing::IsOk;
using ::videotask::testing::StatusIs;

class EngineCallersTest : public ::testing::Test {
 protected:
  void Open(int max_concurrency, int64_t max_queued_per_caller = 0) {
    store::SqliteStoreOptions options;
    options.data_dir = tmp_.path() + "/data";
    options.clock = &clock_;
    auto opened = store::SqliteTaskStore::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);
    backends::BackendConfig config;
    config.name = "mock";
    config.max_concurrency = max_concurrency;
    config.poll_interval = absl::Seconds(6);
    std::vector<EngineBackend> backends;
    backends.push_back(EngineBackend{config, std::make_unique<backends::MockBackend>(config, clock_)});
    EngineOptions engine_options;
    engine_options.owner = "test-owner";
    engine_options.output_dir = tmp_.path() + "/out";
    engine_options.max_queued_per_caller = max_queued_per_caller;
    engine_ = std::make_unique<Engine>(engine_options, *store_, std::move(backends), clock_, rng_,
                                       executor_, hub_);
    ASSERT_TRUE(engine_->Recover().ok());
  }

  // Submits `count` tasks of `caller` in one call (as one BatchSubmitTasks);
  // one result per task.
  store::InsertResults Submit(const std::string& caller, int count,
                              const std::string& latency_ms = "20000") {
    std::vector<store::NewTask> tasks;
    for (int i = 0; i < count; ++i) {
      store::NewTask nt = testing::MockNewTask(0, {{"mock.latency_ms", latency_ms}});
      nt.task.caller = caller;
      nt.task.target_filename_stub = absl::StrCat(caller, "_video");
      tasks.push_back(std::move(nt));
    }
    absl::Notification done;
    store::InsertResults out;
    engine_->SubmitAsync(std::move(tasks), [&](store::InsertResults results) {
      out = std::move(results);
      done.Notify();
    });
    done.WaitForNotification();
    clock_.Advance(absl::Milliseconds(1));  // distinct create times
    return out;
  }

  // Tasks of `caller` that have left QUEUED (started at the provider).
  int64_t Started(const std::string& caller, int64_t submitted) {
    absl::StatusOr<int64_t> queued = store_->CountQueuedOf(caller);
    EXPECT_THAT(queued.status(), IsOk());
    return submitted - queued.value_or(0);
  }

  testing::TempDir tmp_;
  FakeClock clock_;
  std::mt19937_64 rng_{42};
  InlineExecutor executor_;
  WatchHub hub_;
  std::unique_ptr<store::SqliteTaskStore> store_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineCallersTest, ASecondCallerStartsWithinTheFirstFreeSlotsBehind2000Tasks) {
  Open(/*max_concurrency=*/4);
  for (const auto& r : Submit("bulk", 2000)) ASSERT_THAT(r.status(), IsOk());
  engine_->RunOnce();
  ASSERT_EQ(Started("bulk", 2000), 4);
  for (const auto& r : Submit("small", 5)) ASSERT_THAT(r.status(), IsOk());
  engine_->RunOnce();
  EXPECT_EQ(Started("small", 5), 0);  // every slot is taken

  // Run until small's five have started; note how many bulk tasks started
  // before each of them. First come, first served would start 1,996 first.
  int64_t bulk_at_first = -1;
  for (int second = 0; second < 600 && Started("small", 5) < 5; ++second) {
    clock_.Advance(absl::Seconds(1));
    engine_->RunOnce();
    if (bulk_at_first < 0 && Started("small", 5) > 0) bulk_at_first = Started("bulk", 2000);
  }
  ASSERT_EQ(Started("small", 5), 5);
  const int64_t bulk_at_last = Started("bulk", 2000);
  // The four slots that free first go two and two: small's first task is
  // claimed with the first free slots, its fifth within the next rounds.
  EXPECT_LE(bulk_at_first, 4 + 2);
  EXPECT_LE(bulk_at_last, 4 + 8);
  RecordProperty("bulk_started_before_small_first", static_cast<int>(bulk_at_first));
  RecordProperty("bulk_started_by_small_last", static_cast<int>(bulk_at_last));
}

TEST_F(EngineCallersTest, OneCallerAloneIsServedInPriorityThenFifoOrderAsBefore) {
  Open(/*max_concurrency=*/2);
  store::InsertResults first;
  for (int i = 0; i < 3; ++i) {
    store::InsertResults one = Submit("", 1);  // a millisecond apart
    ASSERT_THAT(one[0].status(), IsOk());
    EXPECT_EQ(one[0]->task.caller, "anonymous");  // no tokens: the anonymous caller
    first.push_back(std::move(one[0]));
  }
  engine_->RunOnce();
  VT_ASSERT_OK_AND_ASSIGN(Task a, store_->Get(first[0]->task.id));
  VT_ASSERT_OK_AND_ASSIGN(Task b, store_->Get(first[1]->task.id));
  VT_ASSERT_OK_AND_ASSIGN(Task c, store_->Get(first[2]->task.id));
  EXPECT_NE(a.state, TaskState::kQueued);
  EXPECT_NE(b.state, TaskState::kQueued);
  EXPECT_EQ(c.state, TaskState::kQueued);
}

TEST_F(EngineCallersTest, QueuedLimitPerCallerRefusesTheItemsPastIt) {
  Open(/*max_concurrency=*/1, /*max_queued_per_caller=*/3);
  // One batch of 5: the first 3 are stored, the last 2 refused, in order.
  store::InsertResults batch = Submit("alice", 5);
  ASSERT_EQ(batch.size(), 5u);
  for (int i = 0; i < 3; ++i) EXPECT_THAT(batch[i].status(), IsOk()) << i;
  for (int i = 3; i < 5; ++i) {
    EXPECT_THAT(batch[i].status(),
                StatusIs(absl::StatusCode::kResourceExhausted,
                         AllOf(HasSubstr("caller alice"), HasSubstr("max_queued_per_caller=3"))))
        << i;
  }
  // Another caller has its own allowance.
  for (const auto& r : Submit("bob", 3)) EXPECT_THAT(r.status(), IsOk());
  EXPECT_THAT(Submit("bob", 1)[0].status(),
              StatusIs(absl::StatusCode::kResourceExhausted, ::testing::_));

  // A claim takes one of alice's out of the queue: room for one more.
  engine_->RunOnce();
  const int64_t alice_started = Started("alice", 3);
  const int64_t bob_started = Started("bob", 3);
  ASSERT_EQ(alice_started + bob_started, 1);
  const std::string freed = alice_started == 1 ? "alice" : "bob";
  EXPECT_THAT(Submit(freed, 1)[0].status(), IsOk());
  EXPECT_THAT(Submit(freed, 1)[0].status(),
              StatusIs(absl::StatusCode::kResourceExhausted, ::testing::_));

  // A cancelled QUEUED task frees its place at once, and the count read
  // again from the store after a second agrees.
  VT_ASSERT_OK_AND_ASSIGN(store::ListPage queued, store_->List([] {
                            store::ListQuery q;
                            q.caller = "bob";
                            q.states = {TaskState::kQueued};
                            return q;
                          }()));
  ASSERT_FALSE(queued.tasks.empty());
  ASSERT_THAT(engine_->Cancel(queued.tasks.front().id).status(), IsOk());
  EXPECT_THAT(Submit("bob", 1)[0].status(), IsOk());
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(Submit("bob", 1)[0].status(),
              StatusIs(absl::StatusCode::kResourceExhausted, ::testing::_));
  VT_ASSERT_OK_AND_ASSIGN(int64_t bob_queued, store_->CountQueuedOf("bob"));
  EXPECT_EQ(bob_queued, 3);
}

TEST_F(EngineCallersTest, NoLimitWithoutTheOption) {
  Open(/*max_concurrency=*/1);
  for (const auto& r : Submit("alice", 50)) EXPECT_THAT(r.status(), IsOk());
}

}  // namespace
}  // namespace videotask::engine
