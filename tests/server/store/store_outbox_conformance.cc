// The conformance tests of the webhook outbox, for every store: rows written
// in the transaction of a task's change of state, claims with a lease, the
// outcome of each try, and what survives reopening.
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/domain/task.h"
#include "tests/server/store/store_conformance.h"
#include "tests/testing/status_matchers.h"

namespace videotask::store {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::videotask::testing::StatusIs;

// One message per change into a state whose name is in `states`, to the
// task's notify_url; counts its calls.
class TestPolicy final : public OutboxPolicy {
 public:
  std::vector<OutboxMessage> OnStored(const Task& task,
                                      std::optional<TaskState> from) const override {
    absl::MutexLock lock(&mu_);
    ++calls_;
    if (task.spec.notify_url.empty() || task.state == TaskState::kQueued ||
        task.state == TaskState::kSubmitting) {
      return {};
    }
    OutboxMessage m;
    m.id = absl::StrCat("msg_", task.id, "_", TaskStateName(task.state));
    m.task_id = task.id;
    m.url = task.spec.notify_url;
    m.event_type = absl::StrCat("task.", TaskStateName(task.state));
    m.event_time = task.update_time;
    m.payload = absl::StrCat("{\"from\":\"", from.has_value() ? TaskStateName(*from) : "none",
                             "\"}");
    m.next_attempt_time = task.update_time;
    return {m};
  }
  int calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  mutable absl::Mutex mu_;
  mutable int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

TestPolicy& Policy() {
  static TestPolicy* const policy = new TestPolicy();
  return *policy;
}

Task Subscribed(Task t) {
  t.spec.notify_url = "https://hooks.example/in?token=x";
  t.spec.notify_events = {"task.running"};
  t.spec_fingerprint = SpecFingerprint(t.spec, t.image_sha256);
  return t;
}

// Moves `task` to `state` through the store.
Task MoveTo(TaskStore& store, const Clock& clock, Task task, TaskState state) {
  task.state = state;
  task.update_time = clock.Now();
  absl::StatusOr<Task> stored = store.Update(task);
  EXPECT_TRUE(stored.ok()) << stored.status();
  return stored.ok() ? *stored : task;
}

TEST_P(TaskStoreConformanceTest, OutboxNotifyFieldsAreStoredWithTheSpec) {
  store_->SetOutboxPolicy(&Policy());
  Task stored = InsertOk(Subscribed(MakeTask("spec")));
  VT_ASSERT_OK_AND_ASSIGN(Task got, store_->Get(stored.id));
  EXPECT_EQ(got.spec.notify_url, "https://hooks.example/in?token=x");
  EXPECT_THAT(got.spec.notify_events, ElementsAre("task.running"));
  Task bare = InsertOk(MakeTask("bare"));
  VT_ASSERT_OK_AND_ASSIGN(got, store_->Get(bare.id));
  EXPECT_EQ(got.spec.notify_url, "");
  EXPECT_THAT(got.spec.notify_events, IsEmpty());
}

TEST_P(TaskStoreConformanceTest, OutboxOnlyChangesOfStateWriteRows) {
  store_->SetOutboxPolicy(&Policy());
  Task task = InsertOk(Subscribed(MakeTask("t1")));
  task = MoveTo(*store_, clock_, task, TaskState::kRunning);
  Task same = task;
  same.progress = 0.5f;
  clock_.Advance(absl::Seconds(1));
  same = MoveTo(*store_, clock_, same, TaskState::kRunning);  // no change of state: no row
  // A lost compare-and-set writes nothing either.
  Task stale = task;
  stale.state = TaskState::kFailed;
  EXPECT_THAT(store_->Update(stale).status(), StatusIs(absl::StatusCode::kAborted, ::testing::_));
  MoveTo(*store_, clock_, same, TaskState::kSucceeded);

  VT_ASSERT_OK_AND_ASSIGN(std::vector<OutboxMessage> rows, store_->ListDeliveries(task.id));
  ASSERT_THAT(rows, SizeIs(2));
  EXPECT_EQ(rows[0].id, "msg_t1_RUNNING");
  EXPECT_EQ(rows[0].event_type, "task.RUNNING");
  EXPECT_EQ(rows[0].url, "https://hooks.example/in?token=x");
  EXPECT_EQ(rows[0].state, DeliveryState::kPending);
  EXPECT_EQ(rows[0].attempts, 0);
  EXPECT_EQ(rows[0].payload, "");  // lists leave the body out
  EXPECT_EQ(rows[1].id, "msg_t1_SUCCEEDED");
  EXPECT_THAT(store_->ListDeliveries("unknown").value(), IsEmpty());
}

TEST_P(TaskStoreConformanceTest, OutboxClaimLeasesDueMessagesOnce) {
  store_->SetOutboxPolicy(&Policy());
  Task task = InsertOk(Subscribed(MakeTask("t2")));
  task = MoveTo(*store_, clock_, task, TaskState::kRunning);
  const absl::Time now = clock_.Now();
  VT_ASSERT_OK_AND_ASSIGN(std::vector<OutboxMessage> claimed,
                          store_->ClaimOutbox(now, 10, "a", now + absl::Minutes(1)));
  ASSERT_THAT(claimed, SizeIs(1));
  EXPECT_EQ(claimed[0].payload, "{\"from\":\"QUEUED\"}");
  EXPECT_EQ(claimed[0].task_id, task.id);
  // Leased: nobody else takes it until the lease expires.
  EXPECT_THAT(store_->ClaimOutbox(now, 10, "b", now + absl::Minutes(1)).value(), IsEmpty());
  VT_ASSERT_OK_AND_ASSIGN(
      claimed, store_->ClaimOutbox(now + absl::Minutes(2), 10, "b", now + absl::Minutes(3)));
  ASSERT_THAT(claimed, SizeIs(1));
  // "a" lost its lease: its result is refused.
  DeliveryResult late;
  late.id = claimed[0].id;
  late.owner = "a";
  late.state = DeliveryState::kDelivered;
  EXPECT_THAT(store_->FinishDelivery(late), StatusIs(absl::StatusCode::kAborted, ::testing::_));
  late.id = "msg_unknown";
  EXPECT_THAT(store_->FinishDelivery(late), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST_P(TaskStoreConformanceTest, OutboxRetriesWaitAndEndedMessagesStay) {
  store_->SetOutboxPolicy(&Policy());
  Task task = InsertOk(Subscribed(MakeTask("t3")));
  task = MoveTo(*store_, clock_, task, TaskState::kRunning);
  clock_.Advance(absl::Seconds(1));  // the RUNNING event is due first
  MoveTo(*store_, clock_, task, TaskState::kFailed);
  const absl::Time now = clock_.Now();
  VT_ASSERT_OK_AND_ASSIGN(std::vector<OutboxMessage> claimed,
                          store_->ClaimOutbox(now, 10, "a", now + absl::Minutes(1)));
  ASSERT_THAT(claimed, SizeIs(2));
  DeliveryResult retry;
  retry.id = claimed[0].id;
  retry.owner = "a";
  retry.attempts = 1;
  retry.last_status_code = 503;
  retry.last_error = "HTTP 503";
  retry.next_attempt_time = now + absl::Seconds(30);
  VT_ASSERT_OK(store_->FinishDelivery(retry));
  DeliveryResult done;
  done.id = claimed[1].id;
  done.owner = "a";
  done.state = DeliveryState::kDelivered;
  done.attempts = 1;
  done.last_status_code = 204;
  done.delivered_time = now;
  VT_ASSERT_OK(store_->FinishDelivery(done));

  // Not due yet; the delivered one is never claimed again.
  EXPECT_THAT(store_->ClaimOutbox(now + absl::Seconds(29), 10, "b", now + absl::Hours(1)).value(),
              IsEmpty());
  OpenStore();
  store_->SetOutboxPolicy(&Policy());
  VT_ASSERT_OK_AND_ASSIGN(std::vector<OutboxMessage> rows, store_->ListDeliveries(task.id));
  ASSERT_THAT(rows, SizeIs(2));
  EXPECT_EQ(rows[0].state, DeliveryState::kPending);
  EXPECT_EQ(rows[0].attempts, 1);
  EXPECT_EQ(rows[0].last_status_code, 503);
  EXPECT_EQ(rows[0].last_error, "HTTP 503");
  EXPECT_EQ(rows[0].next_attempt_time, now + absl::Seconds(30));
  EXPECT_EQ(rows[1].state, DeliveryState::kDelivered);
  EXPECT_EQ(rows[1].delivered_time, now);
  VT_ASSERT_OK_AND_ASSIGN(
      claimed, store_->ClaimOutbox(now + absl::Seconds(30), 10, "b", now + absl::Hours(1)));
  ASSERT_THAT(claimed, SizeIs(1));
  EXPECT_EQ(claimed[0].id, rows[0].id);
  EXPECT_EQ(claimed[0].attempts, 1);
}

TEST_P(TaskStoreConformanceTest, OutboxAnInsertedTerminalTaskAndNoPolicyAtAll) {
  store_->SetOutboxPolicy(&Policy());
  Task failed = Subscribed(MakeTask("t4"));
  failed.state = TaskState::kFailed;
  failed.error.code = "INVALID_IMAGE";
  InsertOk(failed);
  EXPECT_THAT(store_->ListDeliveries("t4").value(), SizeIs(1));
  store_->SetOutboxPolicy(nullptr);
  const int calls = Policy().calls();
  Task task = InsertOk(Subscribed(MakeTask("t5")));
  MoveTo(*store_, clock_, task, TaskState::kRunning);
  EXPECT_THAT(store_->ListDeliveries("t5").value(), IsEmpty());
  EXPECT_EQ(Policy().calls(), calls);
}

TEST_P(TaskStoreConformanceTest, OutboxDeletingATaskDropsItsEndedMessagesOnly) {
  store_->SetOutboxPolicy(&Policy());
  Task task = InsertOk(Subscribed(MakeTask("t6")));
  task = MoveTo(*store_, clock_, task, TaskState::kRunning);
  clock_.Advance(absl::Seconds(1));
  task = MoveTo(*store_, clock_, task, TaskState::kSucceeded);
  Task other = InsertOk(Subscribed(MakeTask("t7")));
  other = MoveTo(*store_, clock_, other, TaskState::kFailed);
  const absl::Time now = clock_.Now();
  VT_ASSERT_OK_AND_ASSIGN(std::vector<OutboxMessage> claimed,
                          store_->ClaimOutbox(now, 10, "a", now + absl::Minutes(1)));
  ASSERT_THAT(claimed, SizeIs(3));
  for (const OutboxMessage& m : claimed) {
    if (m.id != absl::StrCat("msg_", task.id, "_", TaskStateName(TaskState::kRunning))) continue;
    DeliveryResult done;  // t6's RUNNING event delivered, its SUCCEEDED one pending
    done.id = m.id;
    done.owner = "a";
    done.state = DeliveryState::kDelivered;
    done.attempts = 1;
    done.last_status_code = 200;
    done.delivered_time = now;
    VT_ASSERT_OK(store_->FinishDelivery(done));
  }
  VT_ASSERT_OK(store_->Delete(task.id).status());
  VT_ASSERT_OK_AND_ASSIGN(std::vector<OutboxMessage> left, store_->ListDeliveries(task.id));
  ASSERT_THAT(left, SizeIs(1));
  EXPECT_EQ(left[0].id, absl::StrCat("msg_", task.id, "_", TaskStateName(TaskState::kSucceeded)));
  EXPECT_EQ(left[0].state, DeliveryState::kPending);
  // Another task's messages are untouched.
  EXPECT_THAT(store_->ListDeliveries(other.id).value(), SizeIs(1));
}

}  // namespace
}  // namespace videotask::store
