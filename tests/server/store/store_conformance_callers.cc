// The conformance suite, callers: Task.caller stored and filtered, the
// per-caller QUEUED count, and the claim that shares a backend's slots
// fairly between callers.
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "server/domain/task.h"
#include "tests/server/store/store_conformance.h"
#include "tests/testing/status_matchers.h"

namespace videotask::store {
namespace {

using ::testing::ElementsAre;
using ::videotask::testing::IsOk;

std::vector<std::string> Ids(const std::vector<Task>& tasks) {
  std::vector<std::string> ids;
  for (const Task& t : tasks) ids.push_back(t.id);
  return ids;
}

std::vector<std::string> Callers(const std::vector<Task>& tasks) {
  std::vector<std::string> callers;
  for (const Task& t : tasks) callers.push_back(t.caller);
  return callers;
}

}  // namespace

TEST_P(TaskStoreConformanceTest, CallerIsStoredFilteredAndCounted) {
  const absl::Time base = clock_.Now();
  std::vector<NewTask> batch;
  for (int i = 0; i < 30; ++i) {
    Task t = MakeTask(absl::StrCat("task", 100 + i));
    t.create_time = base + absl::Milliseconds(i);
    t.caller = i % 3 == 0 ? "alice" : (i % 3 == 1 ? "bob@example.com" : "");
    t.state = i % 2 == 0 ? TaskState::kQueued : TaskState::kSucceeded;
    batch.push_back(New(t));
  }
  for (const auto& r : store_->Insert(std::move(batch))) ASSERT_THAT(r, IsOk());

  VT_ASSERT_OK_AND_ASSIGN(Task alice, store_->Get("task100"));
  EXPECT_EQ(alice.caller, "alice");
  VT_ASSERT_OK_AND_ASSIGN(Task bob, store_->Get("task101"));
  EXPECT_EQ(bob.caller, "bob@example.com");
  VT_ASSERT_OK_AND_ASSIGN(Task nobody, store_->Get("task102"));
  EXPECT_EQ(nobody.caller, "anonymous");  // a task without a caller is the anonymous one's

  // Pages of one caller, newest first, alone and with other filters.
  ListQuery query;
  query.caller = "alice";
  query.page_size = 4;
  std::vector<std::string> seen;
  while (true) {
    VT_ASSERT_OK_AND_ASSIGN(ListPage page, store_->List(query));
    for (const Task& t : page.tasks) seen.push_back(t.id);
    EXPECT_THAT(Callers(page.tasks), ::testing::Each(std::string("alice")));
    if (!page.has_more) break;
    query.after = ListCursor{page.tasks.back().create_time, page.tasks.back().id};
  }
  EXPECT_THAT(seen, ElementsAre("task127", "task124", "task121", "task118", "task115", "task112",
                                "task109", "task106", "task103", "task100"));
  ListQuery queued;
  queued.caller = "anonymous";
  queued.states = {TaskState::kQueued, TaskState::kRunning};  // the merged per-state ranges
  queued.page_size = 100;
  VT_ASSERT_OK_AND_ASSIGN(ListPage page, store_->List(queued));
  EXPECT_THAT(Ids(page.tasks), ElementsAre("task126", "task120", "task114", "task108", "task102"));
  queued.backend = "runway";
  VT_ASSERT_OK_AND_ASSIGN(ListPage none, store_->List(queued));
  EXPECT_TRUE(none.tasks.empty());
  ListQuery unknown;
  unknown.caller = "carol";
  VT_ASSERT_OK_AND_ASSIGN(ListPage empty, store_->List(unknown));
  EXPECT_TRUE(empty.tasks.empty());

  // QUEUED tasks per caller: 5 each of 10; claims take them out of the count.
  VT_ASSERT_OK_AND_ASSIGN(int64_t alice_queued, store_->CountQueuedOf("alice"));
  EXPECT_EQ(alice_queued, 5);
  VT_ASSERT_OK_AND_ASSIGN(int64_t anonymous_queued, store_->CountQueuedOf("anonymous"));
  EXPECT_EQ(anonymous_queued, 5);
  VT_ASSERT_OK_AND_ASSIGN(int64_t carol_queued, store_->CountQueuedOf("carol"));
  EXPECT_EQ(carol_queued, 0);
  const absl::Time now = clock_.Now() + absl::Seconds(1);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> claimed,
                          store_->ClaimQueued("mock", 15, now, "me", now + absl::Minutes(1)));
  EXPECT_EQ(claimed.size(), 15u);
  VT_ASSERT_OK_AND_ASSIGN(alice_queued, store_->CountQueuedOf("alice"));
  EXPECT_EQ(alice_queued, 0);
}

TEST_P(TaskStoreConformanceTest, ClaimSharesSlotsBetweenCallersRoundRobin) {
  const absl::Time base = clock_.Now() - absl::Hours(1);
  std::vector<NewTask> batch;
  // alice queued 200 tasks first, then bob 3 and carol 2.
  for (int i = 0; i < 200; ++i) {
    Task t = MakeTask(absl::StrCat("a", 1000 + i));
    t.caller = "alice";
    t.create_time = base + absl::Milliseconds(i);
    batch.push_back(New(t));
  }
  for (int i = 0; i < 3; ++i) {
    Task t = MakeTask(absl::StrCat("b", i));
    t.caller = "bob";
    t.create_time = base + absl::Seconds(10 + i);
    batch.push_back(New(t));
  }
  for (int i = 0; i < 2; ++i) {
    Task t = MakeTask(absl::StrCat("c", i));
    t.caller = "carol";
    t.create_time = base + absl::Seconds(20 + i);
    batch.push_back(New(t));
  }
  for (const auto& r : store_->Insert(std::move(batch))) ASSERT_THAT(r, IsOk());
  const absl::Time now = clock_.Now();
  const absl::Time expiry = now + absl::Minutes(1);

  // Equal shares take turns, the oldest task first: one each, then again.
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> first, store_->ClaimQueued("mock", 7, now, "me", expiry));
  EXPECT_THAT(Ids(first), ElementsAre("a1000", "b0", "c0", "a1001", "b1", "c1", "a1002"));
  // alice holds 3 slots and bob 2: bob's last task goes first.
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> second,
                          store_->ClaimQueued("mock", 2, now, "me", expiry));
  EXPECT_THAT(Ids(second), ElementsAre("b2", "a1003"));

  // Tasks of one caller that ended free its slots: a caller holding fewer
  // slots is served first even with newer tasks.
  for (const Task& t : first) {
    if (t.caller != "alice") continue;
    Task done = t;
    done.state = TaskState::kSucceeded;
    done.lease_owner.clear();
    ASSERT_THAT(store_->Update(done), IsOk());
  }
  // A higher priority comes first whoever holds the slots.
  Task urgent = MakeTask("urgent");
  urgent.caller = "bob";
  urgent.spec.priority = 5;
  urgent.spec_fingerprint = SpecFingerprint(urgent.spec, "");
  InsertOk(urgent);
  Task late = MakeTask("dave-late");
  late.caller = "dave";
  InsertOk(late);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> third, store_->ClaimQueued("mock", 3, now, "me", expiry));
  // bob holds 3 (b0..b2), alice 1 (a1003), dave 0: urgent (priority 5),
  // then dave, then alice.
  EXPECT_THAT(Ids(third), ElementsAre("urgent", "dave-late", "a1004"));
}

TEST_P(TaskStoreConformanceTest, SecondCallerStartsAtOnceBehindALongQueue) {
  // The fair-dispatch scenario at store level: 2,000 tasks of one caller
  // first, 4 of them running; another caller's 5 take the next free slots.
  const absl::Time base = clock_.Now() - absl::Hours(1);
  std::vector<NewTask> batch;
  for (int i = 0; i < 2000; ++i) {
    Task t = MakeTask(absl::StrCat("bulk", 10000 + i));
    t.caller = "bulk";
    t.create_time = base + absl::Milliseconds(i);
    batch.push_back(New(t));
  }
  for (const auto& r : store_->Insert(std::move(batch))) ASSERT_THAT(r, IsOk());
  const absl::Time now = clock_.Now();
  const absl::Time expiry = now + absl::Minutes(1);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> running,
                          store_->ClaimQueued("mock", 4, now, "me", expiry));
  ASSERT_EQ(running.size(), 4u);
  std::vector<NewTask> small;
  for (int i = 0; i < 5; ++i) {
    Task t = MakeTask(absl::StrCat("small", i));
    t.caller = "small";
    small.push_back(New(t));
  }
  for (const auto& r : store_->Insert(std::move(small))) ASSERT_THAT(r, IsOk());
  // Tasks end in the order they started (equal run times); each end frees
  // one slot and one task is claimed for it.
  std::deque<Task> in_order(running.begin(), running.end());
  std::vector<std::string> started;
  for (int slot = 0; slot < 9; ++slot) {
    VT_ASSERT_OK_AND_ASSIGN(Task done, store_->Get(in_order.front().id));
    in_order.pop_front();
    done.state = TaskState::kSucceeded;
    ASSERT_THAT(store_->Update(done), IsOk());
    VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> next,
                            store_->ClaimQueued("mock", 1, now, "me", expiry));
    ASSERT_EQ(next.size(), 1u);
    started.push_back(next[0].caller);
    in_order.push_back(next[0]);
  }
  // The two callers share the 4 slots, 2 each: small's first task takes the
  // first free slot, its fifth the ninth (first come, first served would
  // start it after 1,996 bulk tasks).
  EXPECT_THAT(started, ElementsAre("small", "small", "bulk", "bulk", "small", "small", "bulk",
                                   "bulk", "small"));
}

}  // namespace videotask::store
