// Conformance: the tasks-per-state counts and the oldest QUEUED task, the
// same for every store (part of TaskStoreConformanceTest).
#include <map>
#include <utility>

#include "tests/server/store/store_conformance.h"
#include "tests/testing/status_matchers.h"

namespace videotask::store {
namespace {

std::map<std::pair<std::string, TaskState>, int64_t> Counts(TaskStore& store) {
  std::map<std::pair<std::string, TaskState>, int64_t> out;
  absl::StatusOr<std::vector<StateCount>> counts = store.CountByState();
  EXPECT_TRUE(counts.ok()) << counts.status();
  if (!counts.ok()) return out;
  for (const StateCount& c : *counts) out[{c.backend, c.state}] = c.count;
  return out;
}

TEST_P(TaskStoreConformanceTest, CountsTasksPerStateAsTheyMove) {
  const absl::Time t0 = clock_.Now();
  for (int i = 0; i < 3; ++i) {
    Task t = MakeTask(absl::StrCat("count-", i));
    t.create_time = t0 + absl::Seconds(i);
    InsertOk(t);
  }
  Task other = MakeTask("count-other");
  other.spec.backend = "runway";
  other.create_time = t0 - absl::Seconds(30);
  InsertOk(other);
  using Key = std::pair<std::string, TaskState>;
  EXPECT_EQ(Counts(*store_), (std::map<Key, int64_t>{{{"mock", TaskState::kQueued}, 3},
                                                     {{"runway", TaskState::kQueued}, 1}}));

  const absl::Time now = t0 + absl::Minutes(1);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> claimed,
                          store_->ClaimQueued("mock", 2, now, "me", now + absl::Minutes(1)));
  ASSERT_EQ(claimed.size(), 2u);
  Task failed = claimed[0];
  failed.state = TaskState::kFailed;
  failed.end_time = now;
  VT_ASSERT_OK(store_->Update(failed).status());
  // A change that keeps the state moves no count.
  Task running = claimed[1];
  running.provider_status = "still submitting";
  VT_ASSERT_OK(store_->Update(running).status());
  EXPECT_EQ(Counts(*store_), (std::map<Key, int64_t>{{{"mock", TaskState::kQueued}, 1},
                                                     {{"mock", TaskState::kSubmitting}, 1},
                                                     {{"mock", TaskState::kFailed}, 1},
                                                     {{"runway", TaskState::kQueued}, 1}}));

  // The oldest QUEUED task of each backend.
  VT_ASSERT_OK_AND_ASSIGN(std::vector<OldestQueued> oldest, store_->OldestQueuedTimes());
  std::map<std::string, absl::Time> by_backend;
  for (const OldestQueued& o : oldest) by_backend[o.backend] = o.create_time;
  EXPECT_EQ(by_backend, (std::map<std::string, absl::Time>{{"mock", t0 + absl::Seconds(2)},
                                                           {"runway", t0 - absl::Seconds(30)}}));

  // A second store on the same database sees (and adds to) the same counts.
  if (!harness_->ReleasesLeasesOnOpen()) {
    VT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<TaskStore> second, harness_->Open(&clock_));
    InsertTaskOk(*second, MakeTask("count-second"), "");
    EXPECT_EQ(Counts(*store_)[Key("mock", TaskState::kQueued)], 2);
    EXPECT_EQ(Counts(*second)[Key("mock", TaskState::kQueued)], 2);
    // Read twice from both: folding the deltas never counts one twice.
    EXPECT_EQ(Counts(*second)[Key("mock", TaskState::kQueued)], 2);
    EXPECT_EQ(Counts(*store_)[Key("mock", TaskState::kFailed)], 1);
  }
}

}  // namespace
}  // namespace videotask::store
