// The retention part of the store conformance suite (task_store.h:
// DeleteEnded, Delete, ListKeptOutputs, ReclaimSpace), run against every
// store by the test executables that instantiate TaskStoreConformanceTest.
#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/sha256.h"
#include "tests/server/store/store_conformance.h"
#include "tests/testing/status_matchers.h"

namespace videotask::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::videotask::testing::IsOk;
using ::videotask::testing::StatusIs;

std::vector<std::string> Ids(const std::vector<Task>& tasks) {
  std::vector<std::string> ids;
  for (const Task& t : tasks) ids.push_back(t.id);
  return ids;
}

// Puts a stored task into `state`, ended at `end`.
Task EndTask(TaskStore& store, Task t, TaskState state, absl::Time end) {
  t.state = state;
  t.end_time = end;
  absl::StatusOr<Task> stored = store.Update(t);
  if (!stored.ok()) {
    ADD_FAILURE() << stored.status();
    return t;
  }
  return *stored;
}

}  // namespace

TEST_P(TaskStoreConformanceTest, DeleteEndedTakesOldTerminalTasksOldestFirstInBatches) {
  const absl::Time now = clock_.Now();
  Task labelled = MakeTask("old-a");
  labelled.spec.labels = {{"batch", "b1"}};
  labelled.spec_fingerprint = SpecFingerprint(labelled.spec, labelled.image_sha256);
  EndTask(*store_, InsertOk(labelled), TaskState::kSucceeded, now - absl::Hours(30));
  EndTask(*store_, InsertOk(MakeTask("old-b")), TaskState::kFailed, now - absl::Hours(40));
  EndTask(*store_, InsertOk(MakeTask("old-c")), TaskState::kCancelled, now - absl::Hours(20));
  EndTask(*store_, InsertOk(MakeTask("recent")), TaskState::kSucceeded, now - absl::Hours(1));
  InsertOk(MakeTask("queued"));
  Task pending = InsertOk(MakeTask("cancel-pending"));
  pending.provider_cancel_pending = true;
  EndTask(*store_, pending, TaskState::kCancelled, now - absl::Hours(50));

  const absl::Time cutoff = now - absl::Hours(10);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> first, store_->DeleteEnded(cutoff, 2));
  EXPECT_THAT(Ids(first), ElementsAre("old-b", "old-a"));  // oldest end first
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> second, store_->DeleteEnded(cutoff, 2));
  EXPECT_THAT(Ids(second), ElementsAre("old-c"));
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> third, store_->DeleteEnded(cutoff, 2));
  EXPECT_TRUE(third.empty());

  // The deleted tasks come back as they were, and are gone with their labels.
  EXPECT_EQ(first[1].spec.labels.at("batch"), "b1");
  for (const char* id : {"old-a", "old-b", "old-c"}) {
    EXPECT_THAT(store_->Get(id), StatusIs(absl::StatusCode::kNotFound, HasSubstr(id)));
  }
  ListQuery by_label;
  by_label.labels = {{"batch", "b1"}};
  VT_ASSERT_OK_AND_ASSIGN(ListPage page, store_->List(by_label));
  EXPECT_TRUE(page.tasks.empty());
  // Kept: the recent one, the live one, and the one whose provider cancel
  // is still pending.
  for (const char* id : {"recent", "queued", "cancel-pending"}) {
    EXPECT_THAT(store_->Get(id), IsOk()) << id;
  }
}

TEST_P(TaskStoreConformanceTest, DeleteEndedKeepsImagesALiveTaskStillUses) {
  const absl::Time now = clock_.Now();
  for (int64_t size : {int64_t{10}, kConformanceInlineMax * 4}) {
    SCOPED_TRACE(size);
    std::string image(static_cast<size_t>(size), static_cast<char>('k' + size % 7));
    std::string sha = Sha256Hex(image);
    Task ended = MakeTask(absl::StrCat("ended", size));
    ended.image_sha256 = sha;
    Task live = MakeTask(absl::StrCat("live", size));
    live.image_sha256 = sha;
    ended = InsertOk(ended, image);
    live = InsertOk(live, image);
    EndTask(*store_, ended, TaskState::kSucceeded, now - absl::Hours(5));
    VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> deleted,
                            store_->DeleteEnded(now - absl::Hours(1), 10));
    EXPECT_THAT(Ids(deleted), ElementsAre(ended.id));
    VT_ASSERT_OK_AND_ASSIGN(std::string kept, store_->ReadImage(sha));
    EXPECT_EQ(kept, image);

    EndTask(*store_, live, TaskState::kFailed, now - absl::Hours(5));
    VT_ASSERT_OK_AND_ASSIGN(deleted, store_->DeleteEnded(now - absl::Hours(1), 10));
    EXPECT_THAT(Ids(deleted), ElementsAre(live.id));
    EXPECT_THAT(store_->ReadImage(sha), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
    EXPECT_FALSE(harness_->HasBlobOutsideDatabase(sha));
  }
}

TEST_P(TaskStoreConformanceTest, DeleteRemovesOneTerminalTask) {
  const absl::Time now = clock_.Now();
  EXPECT_THAT(store_->Delete("nope"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
  Task queued = InsertOk(MakeTask("queued"));
  EXPECT_THAT(store_->Delete("queued"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("QUEUED")));
  Task running = queued;
  running.state = TaskState::kRunning;
  VT_ASSERT_OK(store_->Update(running).status());
  EXPECT_THAT(store_->Delete("queued"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("RUNNING")));

  Task pending = InsertOk(MakeTask("cancel-pending"));
  pending.provider_cancel_pending = true;
  EndTask(*store_, pending, TaskState::kCancelled, now);
  EXPECT_THAT(store_->Delete("cancel-pending"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("being cancelled")));

  Task done = EndTask(*store_, InsertOk(MakeTask("done")), TaskState::kSucceeded, now);
  VT_ASSERT_OK_AND_ASSIGN(Task deleted, store_->Delete("done"));
  ExpectSameTask(deleted, done);
  EXPECT_THAT(store_->Get("done"), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  EXPECT_THAT(store_->Delete("done"), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST_P(TaskStoreConformanceTest, ListKeptOutputsUntilTheirRemovalIsRecorded) {
  const absl::Time now = clock_.Now();
  auto succeed = [&](const std::string& id, absl::Time end, const std::string& path) {
    Task t = InsertOk(MakeTask(id));
    t.output_path = path;
    t.output_size_bytes = 10;
    return EndTask(*store_, t, TaskState::kSucceeded, end);
  };
  Task old_a = succeed("old-a", now - absl::Hours(3), "/out/a.mp4");
  succeed("old-b", now - absl::Hours(4), "/out/b.mp4");
  succeed("recent", now, "/out/r.mp4");
  succeed("no-output", now - absl::Hours(4), "");
  EndTask(*store_, InsertOk(MakeTask("failed")), TaskState::kFailed, now - absl::Hours(4));

  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> kept,
                          store_->ListKeptOutputs(now - absl::Hours(1), 10));
  EXPECT_THAT(Ids(kept), ElementsAre("old-b", "old-a"));
  VT_ASSERT_OK_AND_ASSIGN(kept, store_->ListKeptOutputs(now - absl::Hours(1), 1));
  EXPECT_THAT(Ids(kept), ElementsAre("old-b"));

  old_a.output_removed_time = now;
  VT_ASSERT_OK_AND_ASSIGN(Task marked, store_->Update(old_a));
  EXPECT_EQ(marked.output_removed_time, now);
  VT_ASSERT_OK_AND_ASSIGN(Task got, store_->Get("old-a"));
  EXPECT_EQ(got.output_removed_time, now);
  EXPECT_EQ(got.output_path, "/out/a.mp4");  // still says where it was
  VT_ASSERT_OK_AND_ASSIGN(kept, store_->ListKeptOutputs(now - absl::Hours(1), 10));
  EXPECT_THAT(Ids(kept), ElementsAre("old-b"));
}

TEST_P(TaskStoreConformanceTest, ConcurrentRetentionDeletesEachTaskOnce) {
  const absl::Time now = clock_.Now();
  constexpr int kTasks = 120;
  std::vector<NewTask> batch;
  for (int i = 0; i < kTasks; ++i) {
    Task t = MakeTask(absl::StrCat("t", 1000 + i));
    t.state = TaskState::kSucceeded;
    t.end_time = now - absl::Hours(2) - absl::Seconds(i);
    batch.push_back(New(t));
  }
  for (const auto& r : store_->Insert(std::move(batch))) ASSERT_THAT(r.status(), IsOk());

  absl::Mutex mu;
  std::vector<std::string> seen;
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&] {
      while (true) {
        absl::StatusOr<std::vector<Task>> deleted = store_->DeleteEnded(now - absl::Hours(1), 7);
        if (!deleted.ok()) {
          failed = true;
          ADD_FAILURE() << deleted.status();
          return;
        }
        if (deleted->empty()) return;
        absl::MutexLock lock(&mu);
        for (const Task& t : *deleted) seen.push_back(t.id);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_FALSE(failed);
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(seen.size(), static_cast<size_t>(kTasks));
  EXPECT_EQ(unique.size(), static_cast<size_t>(kTasks));
}

TEST_P(TaskStoreConformanceTest, ReclaimSpaceAnswersOnEveryStore) {
  VT_ASSERT_OK_AND_ASSIGN(int64_t pages, store_->ReclaimSpace(100));
  EXPECT_GE(pages, 0);
}

}  // namespace videotask::store
