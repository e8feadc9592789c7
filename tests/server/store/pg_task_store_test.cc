#include "server/store/postgres/pg_task_store.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "server/domain/task.h"
#include "server/store/postgres/pg_migrations.h"
#include "tests/server/store/pg_test_db.h"
#include "tests/server/store/store_conformance.h"
#include "tests/testing/status_matchers.h"

namespace videotask::store {
namespace {

using ::testing::HasSubstr;
using ::videotask::testing::IsOk;
using ::videotask::testing::PgTestDb;
using ::videotask::testing::StatusIs;

// A fresh change-feed origin per store, as the composition root makes one.
std::string TestOrigin() {
  absl::BitGen gen;
  return NewStoreOrigin(gen);
}

// The PostgreSQL store under the conformance suite: a fresh database per
// test on the test cluster.
class PgHarness final : public StoreHarness {
 public:
  explicit PgHarness(std::unique_ptr<PgTestDb> db) : db_(std::move(db)) {}
  absl::StatusOr<std::unique_ptr<TaskStore>> Open(const Clock* clock) override {
    PgStoreOptions options;
    options.origin = TestOrigin();
    options.conninfo = db_->conninfo();
    options.clock = clock;
    options.pool_connections = 3;
    VT_ASSIGN_OR_RETURN(std::unique_ptr<PgTaskStore> store, PgTaskStore::Open(options));
    return std::unique_ptr<TaskStore>(std::move(store));
  }
  bool ReleasesLeasesOnOpen() const override { return false; }
  bool HasBlobOutsideDatabase(const std::string&) const override { return false; }

 private:
  std::unique_ptr<PgTestDb> db_;
};

std::unique_ptr<StoreHarness> MakePgHarness() {
  absl::StatusOr<std::unique_ptr<PgTestDb>> db = PgTestDb::Create();
  if (!db.ok()) {
    ADD_FAILURE() << db.status();  // no server is a failure, never a skip
    return nullptr;
  }
  return std::make_unique<PgHarness>(*std::move(db));
}

INSTANTIATE_TEST_SUITE_P(Postgres, TaskStoreConformanceTest,
                         ::testing::Values(StoreParam{"Postgres", MakePgHarness}),
                         StoreParamName);

// ---------------------------------------------------------------------------
// What only a store shared by several processes does: two stores on one
// database stand for two replicas.

class PgSharedStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VT_ASSERT_OK_AND_ASSIGN(db_, PgTestDb::Create());
    VT_ASSERT_OK_AND_ASSIGN(a_, OpenStore());
    VT_ASSERT_OK_AND_ASSIGN(b_, OpenStore());
  }

  absl::StatusOr<std::unique_ptr<PgTaskStore>> OpenStore(bool listen = true) {
    PgStoreOptions options;
    options.origin = TestOrigin();
    options.conninfo = db_->conninfo();
    options.clock = &clock_;
    options.pool_connections = 4;
    options.listen = listen;
    return PgTaskStore::Open(options);
  }

  Task MakeTask(absl::string_view id) {
    Task t;
    t.id = std::string(id);
    t.spec.backend = "mock";
    t.spec.model = "m";
    t.spec.prompt_text = absl::StrCat("prompt ", id);
    t.target_filename_stub = absl::StrCat(id, "_video");
    t.create_time = clock_.Now();
    t.spec_fingerprint = SpecFingerprint(t.spec, "");
    return t;
  }

  void InsertMany(TaskStore& store, int n, absl::string_view prefix) {
    std::vector<NewTask> batch;
    for (int i = 0; i < n; ++i) {
      NewTask nt;
      nt.task = MakeTask(absl::StrCat(prefix, i));
      batch.push_back(std::move(nt));
    }
    for (const auto& r : store.Insert(std::move(batch))) ASSERT_THAT(r, IsOk());
  }

  std::unique_ptr<PgTestDb> db_;
  FakeClock clock_;
  std::unique_ptr<PgTaskStore> a_;
  std::unique_ptr<PgTaskStore> b_;
};

TEST_F(PgSharedStoreTest, ConcurrentClaimsNeverTakeATaskTwice) {
  constexpr int kTasks = 300;
  InsertMany(*a_, kTasks, "t");
  absl::Mutex mu;
  std::map<std::string, std::string> owner_of;
  int duplicates = 0;
  std::vector<std::thread> threads;
  const absl::Time now = clock_.Now();
  for (int i = 0; i < 6; ++i) {
    TaskStore* store = i % 2 == 0 ? a_.get() : b_.get();
    threads.emplace_back([&, store, i] {
      const std::string owner = absl::StrCat("owner", i);
      while (true) {
        absl::StatusOr<std::vector<Task>> got =
            store->ClaimQueued("mock", 7, now, owner, now + absl::Minutes(1));
        ASSERT_THAT(got, IsOk());
        if (got->empty()) return;
        absl::MutexLock lock(&mu);
        for (const Task& t : *got) {
          EXPECT_EQ(t.lease_owner, owner);
          if (!owner_of.emplace(t.id, owner).second) ++duplicates;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(owner_of.size(), static_cast<size_t>(kTasks));
  std::set<std::string> owners;
  for (const auto& [id, owner] : owner_of) owners.insert(owner);
  EXPECT_GT(owners.size(), 1u) << "one claimer took everything";
  VT_ASSERT_OK_AND_ASSIGN(int64_t queued, b_->CountQueued());
  EXPECT_EQ(queued, 0);
}

// Outbox rows for every QUEUED -> FAILED change, so each replica's claims
// can be counted.
class FailedEventPolicy final : public OutboxPolicy {
 public:
  std::vector<OutboxMessage> OnStored(const Task& task,
                                      std::optional<TaskState> from) const override {
    if (!from.has_value() || task.state != TaskState::kFailed) return {};
    OutboxMessage m;
    m.id = absl::StrCat("msg_", task.id);
    m.task_id = task.id;
    m.url = "https://hooks.example/";
    m.event_type = "task.failed";
    m.event_time = task.update_time;
    m.payload = "{}";
    m.next_attempt_time = task.update_time;
    return {m};
  }
};

TEST_F(PgSharedStoreTest, TwoReplicasClaimEachWebhookOnce) {
  constexpr int kTasks = 120;
  FailedEventPolicy policy;
  a_->SetOutboxPolicy(&policy);
  b_->SetOutboxPolicy(&policy);
  InsertMany(*a_, kTasks, "w");
  const absl::Time now = clock_.Now();
  for (int i = 0; i < kTasks; ++i) {
    VT_ASSERT_OK_AND_ASSIGN(Task t, b_->Get(absl::StrCat("w", i)));
    t.state = TaskState::kFailed;
    t.update_time = now;
    VT_ASSERT_OK((i % 2 == 0 ? *a_ : *b_).Update(t).status());
  }
  absl::Mutex mu;
  std::map<std::string, std::string> owner_of;
  int duplicates = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    TaskStore* store = i % 2 == 0 ? a_.get() : b_.get();
    threads.emplace_back([&, store, i] {
      const std::string owner = absl::StrCat("replica", i);
      while (true) {
        absl::StatusOr<std::vector<OutboxMessage>> got =
            store->ClaimOutbox(now, 5, owner, now + absl::Minutes(1));
        ASSERT_THAT(got, IsOk());
        if (got->empty()) return;
        for (const OutboxMessage& m : *got) {
          {
            absl::MutexLock lock(&mu);
            if (!owner_of.emplace(m.id, owner).second) ++duplicates;
          }
          DeliveryResult done;
          done.id = m.id;
          done.owner = owner;
          done.state = DeliveryState::kDelivered;
          done.attempts = 1;
          done.last_status_code = 200;
          done.delivered_time = now;
          ASSERT_THAT(store->FinishDelivery(done), IsOk());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(owner_of.size(), static_cast<size_t>(kTasks));
  std::set<std::string> owners;
  for (const auto& [id, owner] : owner_of) owners.insert(owner);
  EXPECT_GT(owners.size(), 1u) << "one replica delivered everything";
  VT_ASSERT_OK_AND_ASSIGN(std::vector<OutboxMessage> rows, a_->ListDeliveries("w7"));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].state, DeliveryState::kDelivered);
}

TEST_F(PgSharedStoreTest, ConcurrencyLimitIsGlobal) {
  InsertMany(*a_, 10, "t");
  a_->SetBackendLimits("mock", 3, absl::ZeroDuration());
  b_->SetBackendLimits("mock", 3, absl::ZeroDuration());
  const absl::Time now = clock_.Now();
  const absl::Time expiry = now + absl::Minutes(1);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> first, a_->ClaimQueued("mock", 10, now, "a", expiry));
  EXPECT_EQ(first.size(), 3u);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> none, b_->ClaimQueued("mock", 10, now, "b", expiry));
  EXPECT_TRUE(none.empty()) << "replica b exceeded the shared cap";
  // RUNNING still counts; a finished task frees its slot for anyone.
  Task running = first[0];
  running.state = TaskState::kRunning;
  VT_ASSERT_OK(a_->Update(running).status());
  VT_ASSERT_OK_AND_ASSIGN(none, b_->ClaimQueued("mock", 10, now, "b", expiry));
  EXPECT_TRUE(none.empty());
  Task done = first[1];
  done.state = TaskState::kSucceeded;
  done.lease_owner.clear();
  VT_ASSERT_OK(a_->Update(done).status());
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> one, b_->ClaimQueued("mock", 10, now, "b", expiry));
  EXPECT_EQ(one.size(), 1u);

  // Finish what is held, then many concurrent claimers on both stores
  // never exceed the cap.
  for (const std::string& id : {first[0].id, first[2].id, one[0].id}) {
    VT_ASSERT_OK_AND_ASSIGN(Task held, a_->Get(id));
    held.state = TaskState::kSucceeded;
    held.lease_owner.clear();
    VT_ASSERT_OK(a_->Update(held).status());
  }
  constexpr int kCap = 3;
  absl::Mutex mu;
  int max_seen = 0;
  VT_ASSERT_OK_AND_ASSIGN(auto c, OpenStore(/*listen=*/false));
  c->SetBackendLimits("mock", kCap, absl::ZeroDuration());
  InsertMany(*c, 40, "more");
  std::vector<std::thread> threads;
  std::atomic<int> finished{0};
  for (int i = 0; i < 4; ++i) {
    PgTaskStore* store = i % 2 == 0 ? a_.get() : b_.get();
    threads.emplace_back([&, store, i] {
      const std::string owner = absl::StrCat("w", i);
      for (int round = 0; round < 30; ++round) {
        absl::StatusOr<std::vector<Task>> got = store->ClaimQueued("mock", 5, now, owner, expiry);
        ASSERT_THAT(got, IsOk());
        VT_ASSERT_OK_AND_ASSIGN(ListPage page, store->List(ListQuery{
                                                   1000,
                                                   {TaskState::kSubmitting, TaskState::kRunning},
                                                   "mock",
                                                   {},
                                                   std::nullopt,
                                                   ""}));
        {
          absl::MutexLock lock(&mu);
          max_seen = std::max(max_seen, static_cast<int>(page.tasks.size()));
        }
        for (Task t : *got) {
          t.state = TaskState::kSucceeded;
          t.lease_owner.clear();
          ASSERT_THAT(store->Update(t), IsOk());
          finished.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(max_seen, kCap);
  EXPECT_GT(finished.load(), 0);
}

TEST_F(PgSharedStoreTest, MinimumIntervalIsGlobal) {
  InsertMany(*a_, 5, "t");
  a_->SetBackendLimits("mock", 100, absl::Seconds(10));
  b_->SetBackendLimits("mock", 100, absl::Seconds(10));
  const absl::Time now = clock_.Now();
  const absl::Time expiry = now + absl::Hours(1);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> got, a_->ClaimQueued("mock", 5, now, "a", expiry));
  EXPECT_EQ(got.size(), 1u);  // one creation per interval
  VT_ASSERT_OK_AND_ASSIGN(got, b_->ClaimQueued("mock", 5, now + absl::Seconds(9), "b", expiry));
  EXPECT_TRUE(got.empty()) << "replica b created within a's interval";
  VT_ASSERT_OK_AND_ASSIGN(got, b_->ClaimQueued("mock", 5, now + absl::Seconds(10), "b", expiry));
  EXPECT_EQ(got.size(), 1u);
  VT_ASSERT_OK_AND_ASSIGN(got, a_->ClaimQueued("mock", 5, now + absl::Seconds(15), "a", expiry));
  EXPECT_TRUE(got.empty());
}

TEST_F(PgSharedStoreTest, DailyBudgetsHoldToTheCentAcrossReplicas) {
  // 60 tasks of 3 cents, two callers; the backend may spend $0.70 a day and
  // each caller $0.40. Only the spend rows serialize these claims (no
  // backend limits are set).
  std::vector<NewTask> batch;
  for (int i = 0; i < 60; ++i) {
    NewTask nt;
    nt.task = MakeTask(absl::StrCat("t", i));
    nt.task.caller = i % 2 == 0 ? "alice" : "bob";
    nt.task.estimated_cost_micros = 30'000;
    batch.push_back(std::move(nt));
  }
  for (const auto& r : a_->Insert(std::move(batch))) ASSERT_THAT(r, IsOk());
  DailyBudgets budgets;
  budgets.backend_micros["mock"] = 700'000;
  budgets.per_caller_micros = 400'000;
  a_->SetDailyBudgets(budgets);
  b_->SetDailyBudgets(budgets);
  const absl::Time now = clock_.Now();
  std::atomic<int64_t> claimed_micros{0};
  std::atomic<int> claimed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    TaskStore* store = i % 2 == 0 ? a_.get() : b_.get();
    threads.emplace_back([&, store, i] {
      const std::string owner = absl::StrCat("owner", i);
      for (int round = 0; round < 20; ++round) {
        absl::StatusOr<std::vector<Task>> got =
            store->ClaimQueued("mock", 2, now, owner, now + absl::Minutes(1));
        ASSERT_THAT(got, IsOk());
        for (const Task& t : *got) {
          claimed_micros.fetch_add(t.estimated_cost_micros);
          claimed.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  // 23 tasks ($0.69) fit under $0.70; not one more, whichever replica took them.
  EXPECT_EQ(claimed.load(), 23);
  EXPECT_EQ(claimed_micros.load(), 690'000);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<DailySpend> spend, b_->ListDailySpend(now));
  int64_t callers_total = 0;
  for (const DailySpend& s : spend) {
    if (s.kind == DailySpend::Kind::kBackend) {
      EXPECT_EQ(s.name, "mock");
      EXPECT_EQ(s.spent_micros, 690'000);
    } else {
      EXPECT_LE(s.spent_micros, 400'000) << s.name;
      callers_total += s.spent_micros;
    }
  }
  EXPECT_EQ(callers_total, 690'000);
  VT_ASSERT_OK_AND_ASSIGN(int64_t queued, a_->CountQueued());
  EXPECT_EQ(queued, 60 - 23);
}

TEST_F(PgSharedStoreTest, RequestIdIsUniqueAcrossStores) {
  constexpr int kThreads = 8;
  std::vector<absl::StatusOr<InsertResult>> results(kThreads, absl::InternalError("unset"));
  std::vector<std::thread> threads;
  Task proto = MakeTask("proto");
  proto.request_id = "shared";
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      Task t = proto;
      t.id = absl::StrCat("racer", i);
      std::vector<NewTask> batch(1);
      batch[0].task = std::move(t);
      results[i] = (i % 2 == 0 ? a_ : b_)->Insert(std::move(batch)).at(0);
    });
  }
  for (auto& t : threads) t.join();
  int created = 0;
  std::set<std::string> ids;
  for (const auto& r : results) {
    ASSERT_THAT(r, IsOk());
    created += r->created ? 1 : 0;
    ids.insert(r->task.id);
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(ids.size(), 1u);
}

TEST_F(PgSharedStoreTest, RetentionOnSeveralReplicasDeletesEachTaskOnce) {
  constexpr int kTasks = 300;
  std::vector<NewTask> batch;
  for (int i = 0; i < kTasks; ++i) {
    NewTask nt;
    nt.task = MakeTask(absl::StrCat("ended", i));
    nt.task.state = TaskState::kSucceeded;
    nt.task.end_time = clock_.Now() - absl::Hours(2) - absl::Seconds(i % 17);
    batch.push_back(std::move(nt));
  }
  for (const auto& r : a_->Insert(std::move(batch))) ASSERT_THAT(r, IsOk());
  absl::Mutex mu;
  std::vector<std::string> deleted;
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      TaskStore& store = i % 2 == 0 ? *a_ : *b_;
      while (true) {
        absl::StatusOr<std::vector<Task>> got =
            store.DeleteEnded(clock_.Now() - absl::Hours(1), 10);
        if (!got.ok()) {
          ADD_FAILURE() << got.status();
          return;
        }
        if (got->empty()) return;
        absl::MutexLock lock(&mu);
        for (const Task& t : *got) deleted.push_back(t.id);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> unique(deleted.begin(), deleted.end());
  EXPECT_EQ(deleted.size(), static_cast<size_t>(kTasks));
  EXPECT_EQ(unique.size(), static_cast<size_t>(kTasks));
  VT_ASSERT_OK_AND_ASSIGN(ListPage left, b_->List(ListQuery()));
  EXPECT_TRUE(left.tasks.empty());
}

TEST_F(PgSharedStoreTest, StubsStayUniqueAcrossStores) {
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 20; ++j) {
        Task t = MakeTask(absl::StrCat("s", i, "_", j));
        t.target_filename_stub = j % 3 == 2 ? "clip_video_2" : "clip_video";
        std::vector<NewTask> batch(1);
        batch[0].task = std::move(t);
        ASSERT_THAT((i % 2 == 0 ? a_ : b_)->Insert(std::move(batch)).at(0), IsOk());
      }
    });
  }
  for (auto& t : threads) t.join();
  ListQuery all;
  all.page_size = 1000;
  VT_ASSERT_OK_AND_ASSIGN(ListPage page, a_->List(all));
  std::set<std::string> stubs;
  for (const Task& t : page.tasks) stubs.insert(t.target_filename_stub);
  EXPECT_EQ(page.tasks.size(), 80u);
  EXPECT_EQ(stubs.size(), 80u);
}

TEST_F(PgSharedStoreTest, ChangesReachTheOtherStoresListener) {
  absl::Mutex mu;
  std::vector<Task> seen_by_b;
  std::vector<Task> seen_by_a;
  b_->SetChangeListener([&](const Task& t) {
    absl::MutexLock lock(&mu);
    seen_by_b.push_back(t);
  });
  a_->SetChangeListener([&](const Task& t) {
    absl::MutexLock lock(&mu);
    seen_by_a.push_back(t);
  });
  std::vector<NewTask> batch(1);
  batch[0].task = MakeTask("watched");
  VT_ASSERT_OK_AND_ASSIGN(InsertResult inserted, a_->Insert(std::move(batch)).at(0));
  Task running = inserted.task;
  running.state = TaskState::kRunning;
  running.progress = 0.5f;
  VT_ASSERT_OK_AND_ASSIGN(Task stored, a_->Update(running));
  // Renewals keep the version and are not announced.
  VT_ASSERT_OK(a_->RenewLeases("nobody", clock_.Now()));

  const int64_t b_wants = stored.version;
  auto b_has_version = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (const Task& t : seen_by_b) {
      if (t.id == "watched" && t.version >= b_wants) return true;
    }
    return false;
  };
  {
    absl::MutexLock lock(&mu);
    // Pushed by NOTIFY, no polling: bounded wait for the delivery.
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&b_has_version),
                                    absl::Seconds(10)))
        << "replica b never heard of the change";
  }
  // A change made by b reaches a; a's own changes never come back to a.
  Task done = stored;
  done.state = TaskState::kSucceeded;
  VT_ASSERT_OK_AND_ASSIGN(Task finished, b_->Update(done));
  const int64_t a_wants = finished.version;
  auto a_has_version = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (const Task& t : seen_by_a) {
      if (t.id == "watched" && t.version == a_wants) return true;
    }
    return false;
  };
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&a_has_version),
                                  absl::Seconds(10)));
  for (const Task& t : seen_by_a) EXPECT_EQ(t.version, finished.version) << "own change echoed";
  EXPECT_EQ(seen_by_a.back().state, TaskState::kSucceeded);
  EXPECT_GE(b_->stats().notifications, 1);
}

TEST_F(PgSharedStoreTest, ClearedListenerIsNotCalled) {
  std::atomic<int> calls{0};
  b_->SetChangeListener([&](const Task&) { calls.fetch_add(1); });
  b_->SetChangeListener(nullptr);
  InsertMany(*a_, 3, "x");
  // A third store's listener proves the notifications were sent.
  absl::Notification heard;
  VT_ASSERT_OK_AND_ASSIGN(auto c, OpenStore());
  c->SetChangeListener([&](const Task&) {
    if (!heard.HasBeenNotified()) heard.Notify();
  });
  InsertMany(*a_, 1, "y");
  EXPECT_TRUE(heard.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(calls.load(), 0);
}

TEST_F(PgSharedStoreTest, RefusesASchemaFromANewerBinary) {
  a_.reset();
  b_.reset();
  VT_ASSERT_OK(db_->Exec("UPDATE videotask_schema SET version = 42"));
  EXPECT_THAT(OpenStore().status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("newer than this binary")));
  VT_ASSERT_OK(db_->Exec(
      absl::StrCat("UPDATE videotask_schema SET version = ", pg::LatestSchemaVersion())));
  VT_EXPECT_OK(OpenStore().status());
}

TEST_F(PgSharedStoreTest, ReplicasStartingTogetherMigrateOnce) {
  VT_ASSERT_OK_AND_ASSIGN(auto fresh, PgTestDb::Create());
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      PgStoreOptions options;
      options.origin = TestOrigin();
      options.conninfo = fresh->conninfo();
      options.pool_connections = 1;
      options.listen = false;
      results[i] = PgTaskStore::Open(options).status();
    });
  }
  for (auto& t : threads) t.join();
  for (const absl::Status& s : results) EXPECT_THAT(s, IsOk());
}

TEST_F(PgSharedStoreTest, BadConnectionStringFailsWithoutEchoingIt) {
  PgStoreOptions options;
  options.origin = TestOrigin();
  options.conninfo = "host=127.0.0.1 port=1 user=nobody password=s3cret-value connect_timeout=2";
  absl::StatusOr<std::unique_ptr<PgTaskStore>> store = PgTaskStore::Open(options);
  EXPECT_THAT(store.status(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("connect")));
  EXPECT_THAT(std::string(store.status().message()), ::testing::Not(HasSubstr("s3cret")));
}

}  // namespace
}  // namespace videotask::store
