// Several real videotaskd replicas on one PostgreSQL database (the test
// cluster of scripts/pg-test-server, a fresh database per test), driven
// through gRPC from clients spread over the replicas:
//  - a change made on one replica wakes a WaitTask on another;
//  - a few hundred tasks all SUCCEED, each created at the provider exactly
//    once (one mock ledger shared by the replicas), the work spread over
//    the replicas, the mock's concurrency cap never exceeded globally;
//  - a replica killed with SIGKILL mid-flight: its tasks finish on the
//    others once its lease expired, none created twice;
//  - a pause, a retry and an adopted task hold on the other replica.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/server/store/pg_test_db.h"
#include "tests/testing/daemon.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/temp_dir.h"
#include "videotask/v1/video_task_service.grpc.pb.h"

namespace videotask::testing {
namespace {

namespace v1 = ::videotask::v1;

constexpr int kReplicas = 3;
constexpr char kLease[] = "3s";
constexpr absl::Duration kLeaseDuration = absl::Seconds(3);

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

// "<task id> <provider id>" lines appended by the mock backends.
std::map<std::string, int> ReadLedger(const std::vector<std::string>& paths) {
  std::map<std::string, int> creates;
  for (const std::string& path : paths) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (!parts.empty()) ++creates[parts[0]];
    }
  }
  return creates;
}

bool IsTerminal(v1::State s) {
  return s == v1::SUCCEEDED || s == v1::FAILED || s == v1::CANCELLED;
}

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<PgTestDb>> db = PgTestDb::Create();
    ASSERT_TRUE(db.ok()) << db.status();  // no server: fail, never skip
    db_ = *std::move(db);
  }

  void TearDown() override {
    for (auto& d : daemons_) {
      if (d != nullptr && HasFailure()) {
        std::printf("---- replica log ----\n%s\n", d->Log().substr(0, 20000).c_str());
      }
    }
    daemons_.clear();  // SIGKILLs what still runs
  }

  std::string ReplicaDir(int i) const { return absl::StrCat(tmp_.path(), "/replica", i); }

  // Starts replica i with the shared store; `ledger` is its mock ledger.
  void StartReplica(int i, const std::string& ledger, int mock_cap) {
    std::string dir = ReplicaDir(i);
    ASSERT_EQ(::system(absl::StrCat("mkdir -p '", dir, "'").c_str()), 0);
    auto d = std::make_unique<Daemon>(VT_VIDEOTASKD_PATH, dir);
    std::string error;
    ASSERT_TRUE(d->Start({"--store=" + db_->url(), "--data_dir=" + dir + "/data",
                          "--backends=mock", "--mock_ledger=" + ledger,
                          absl::StrCat("--mock_max_concurrency=", mock_cap),
                          "--mock_poll_interval=50ms", absl::StrCat("--lease_duration=", kLease),
                          "--worker_threads=8", "--log_level=warn"},
                         &error, absl::Seconds(30)))
        << error;
    auto channel = grpc::CreateChannel(d->address(), grpc::InsecureChannelCredentials());
    stubs_.resize(kReplicas);
    stubs_[i] = v1::VideoTaskService::NewStub(channel);
    daemons_.resize(kReplicas);
    daemons_[i] = std::move(d);
  }

  v1::SubmitTaskRequest Request(const std::string& request_id, int n, int latency_ms) {
    v1::SubmitTaskRequest r;
    r.set_request_id(request_id);
    v1::TaskSpec& spec = *r.mutable_spec();
    spec.mutable_image()->set_content(TinyPng(n));
    spec.mutable_image()->set_filename(absl::StrCat("shot_", n, ".png"));
    spec.set_prompt_text(absl::StrCat("slow pan ", n));
    spec.set_duration_seconds(5);
    (*spec.mutable_labels())["mock.latency_ms"] = absl::StrCat(latency_ms);
    (*spec.mutable_labels())["mock.progress_steps"] = "1";
    return r;
  }

  // Waits on replica `replica` (WaitTask, 60 s per call) until terminal.
  v1::Task WaitTerminal(int replica, const std::string& id, absl::Duration budget) {
    absl::Time give_up = absl::Now() + budget;
    v1::Task task;
    while (absl::Now() < give_up) {
      v1::WaitTaskRequest wait;
      wait.set_id(id);
      wait.mutable_timeout()->set_seconds(10);
      grpc::Status status =
          stubs_[replica]->WaitTask(Context(absl::Seconds(20)).get(), wait, &task);
      if (status.ok() && IsTerminal(task.state())) return task;
    }
    ADD_FAILURE() << "task " << id << " not terminal in time: " << task.ShortDebugString();
    return task;
  }

  // Which replica's output dir holds the output (-1: none).
  int ReplicaOfOutput(const v1::Task& task) const {
    for (int i = 0; i < kReplicas; ++i) {
      if (absl::StartsWith(task.output_path(), ReplicaDir(i) + "/")) return i;
    }
    return -1;
  }

  // Tasks SUBMITTING, RUNNING or DOWNLOADING, seen through one replica.
  int ActiveTasks(int replica) {
    v1::ListTasksRequest list;
    list.set_page_size(1000);
    list.add_states(v1::SUBMITTING);
    list.add_states(v1::RUNNING);
    list.add_states(v1::DOWNLOADING);
    v1::ListTasksResponse resp;
    grpc::Status status = stubs_[replica]->ListTasks(Context(absl::Seconds(5)).get(), list, &resp);
    return status.ok() ? resp.tasks_size() : -1;
  }

  TempDir tmp_;
  std::unique_ptr<PgTestDb> db_;
  std::vector<std::unique_ptr<Daemon>> daemons_;
  std::vector<std::unique_ptr<v1::VideoTaskService::Stub>> stubs_;
};

TEST_F(ReplicasTest, WaitOnOneReplicaSeesProgressMadeOnAnother) {
  const std::string ledger = tmp_.path() + "/ledger";
  StartReplica(0, ledger, 4);
  ASSERT_FALSE(HasFailure());
  v1::Task submitted;
  ASSERT_TRUE(stubs_[0]
                  ->SubmitTask(Context(absl::Seconds(10)).get(), Request("feed-1", 1, 4000),
                               &submitted)
                  .ok());
  // Replica 0 holds it (RUNNING under its lease) before replica 1 exists,
  // so every later change is made by replica 0.
  v1::Task seen;
  {
    v1::WaitTaskRequest wait;
    wait.set_id(submitted.id());
    wait.mutable_timeout()->set_seconds(1);
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (absl::Now() < give_up && seen.state() != v1::RUNNING) {
      ASSERT_TRUE(stubs_[0]->WaitTask(Context(absl::Seconds(5)).get(), wait, &seen).ok());
      if (seen.state() != v1::RUNNING) {
        v1::GetTaskRequest get;
        get.set_id(submitted.id());
        ASSERT_TRUE(stubs_[0]->GetTask(Context(absl::Seconds(5)).get(), get, &seen).ok());
      }
    }
    ASSERT_EQ(seen.state(), v1::RUNNING) << seen.ShortDebugString();
  }
  StartReplica(1, ledger, 4);
  ASSERT_FALSE(HasFailure());
  absl::Time start = absl::Now();
  v1::WaitTaskRequest wait;
  wait.set_id(submitted.id());
  wait.mutable_timeout()->set_seconds(30);
  // Without a change feed, the waiter on replica 1 would sit out its full
  // 30 s timeout and come back with the task still RUNNING.
  ASSERT_TRUE(stubs_[1]->WaitTask(Context(absl::Seconds(40)).get(), wait, &seen).ok());
  EXPECT_EQ(seen.state(), v1::SUCCEEDED) << seen.ShortDebugString();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(ReplicaOfOutput(seen), 0) << seen.ShortDebugString();

  // The same request_id on the other replica is the same task.
  v1::Task again;
  ASSERT_TRUE(stubs_[1]
                  ->SubmitTask(Context(absl::Seconds(10)).get(), Request("feed-1", 1, 4000),
                               &again)
                  .ok());
  EXPECT_EQ(again.id(), submitted.id());
  v1::Task other;
  grpc::Status clash = stubs_[1]->SubmitTask(Context(absl::Seconds(10)).get(),
                                             Request("feed-1", 2, 4000), &other);
  EXPECT_EQ(clash.error_code(), grpc::StatusCode::ALREADY_EXISTS) << clash.error_message();
}

TEST_F(ReplicasTest, ThreeReplicasBehaveLikeOneBiggerServer) {
  constexpr int kTasks = 300;
  constexpr int kClients = 6;
  constexpr int kCap = 12;  // the mock's concurrency, global across replicas
  const std::string ledger = tmp_.path() + "/ledger";
  for (int i = 0; i < kReplicas; ++i) StartReplica(i, ledger, kCap);
  ASSERT_FALSE(HasFailure());

  // Samples the active tasks while the work runs.
  std::atomic<bool> sampling{true};
  std::atomic<int> max_active{0};
  std::thread sampler([&] {
    int r = 0;
    while (sampling.load()) {
      int n = ActiveTasks(r++ % kReplicas);
      int prev = max_active.load();
      while (n > prev && !max_active.compare_exchange_weak(prev, n)) {
      }
      absl::SleepFor(absl::Milliseconds(20));  // a sampling period, not a wait for an event
    }
  });

  std::mutex mu;
  std::vector<std::pair<std::string, int>> ids;  // id, submitting replica
  std::atomic<int> submit_errors{0};
  absl::Time submit_start = absl::Now();
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int n = c; n < kTasks; n += kClients) {
        int replica = n % kReplicas;
        v1::Task task;
        grpc::Status status =
            stubs_[replica]->SubmitTask(Context(absl::Seconds(20)).get(),
                                        Request(absl::StrCat("r-", n), n, (n * 37) % 300), &task);
        if (!status.ok()) {
          submit_errors.fetch_add(1);
          continue;
        }
        std::lock_guard<std::mutex> lock(mu);
        ids.emplace_back(task.id(), replica);
      }
    });
  }
  for (auto& t : clients) t.join();
  absl::Duration submit_time = absl::Now() - submit_start;
  std::printf("submitted %d tasks through %d replicas in %s (%.0f/s)\n", kTasks, kReplicas,
              absl::FormatDuration(submit_time).c_str(),
              kTasks / absl::ToDoubleSeconds(submit_time));
  ASSERT_EQ(submit_errors.load(), 0);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kTasks));

  std::map<int, int> by_replica;
  for (const auto& [id, submitted_on] : ids) {
    // Waited for on another replica than the one it was submitted to.
    v1::Task task = WaitTerminal((submitted_on + 1) % kReplicas, id, absl::Seconds(120));
    EXPECT_EQ(task.state(), v1::SUCCEEDED) << task.ShortDebugString();
    ++by_replica[ReplicaOfOutput(task)];
  }
  sampling.store(false);
  sampler.join();

  std::map<std::string, int> creates = ReadLedger({ledger});
  EXPECT_EQ(creates.size(), static_cast<size_t>(kTasks));
  for (const auto& [id, submitted_on] : ids) {
    EXPECT_EQ(creates[id], 1) << "task " << id << " created " << creates[id] << " times";
  }
  EXPECT_EQ(by_replica.count(-1), 0u) << "outputs outside every replica's dir";
  for (int i = 0; i < kReplicas; ++i) {
    std::printf("replica %d downloaded %d tasks\n", i, by_replica[i]);
    EXPECT_GE(by_replica[i], kTasks / 20) << "replica " << i << " did (almost) nothing";
  }
  std::printf("most tasks active at once: %d (cap %d)\n", max_active.load(), kCap);
  EXPECT_LE(max_active.load(), kCap) << "the concurrency cap was exceeded across replicas";
  EXPECT_GT(max_active.load(), 0);
}

TEST_F(ReplicasTest, KilledReplicasTasksFinishOnTheOthersAfterItsLease) {
  constexpr int kTasks = 60;
  constexpr int kLatencyMs = 4000;
  std::vector<std::string> ledgers;
  for (int i = 0; i < kReplicas; ++i) {
    // One ledger per replica: tells who created what (exactly-once is
    // checked over their union).
    ledgers.push_back(absl::StrCat(tmp_.path(), "/ledger", i));
    StartReplica(i, ledgers[i], 60);
  }
  ASSERT_FALSE(HasFailure());

  std::vector<std::string> ids;
  for (int n = 0; n < kTasks; ++n) {
    v1::Task task;
    ASSERT_TRUE(stubs_[n % kReplicas]
                    ->SubmitTask(Context(absl::Seconds(20)).get(),
                                 Request(absl::StrCat("k-", n), n, kLatencyMs), &task)
                    .ok());
    ids.push_back(task.id());
  }
  // Mid-flight: replica 0 has created tasks that are still running.
  absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (absl::Now() < give_up && ReadLedger({ledgers[0]}).size() < 5) {
    absl::SleepFor(absl::Milliseconds(20));  // polling a file another process writes
  }
  std::map<std::string, int> victims = ReadLedger({ledgers[0]});
  ASSERT_GE(victims.size(), 5u) << "replica 0 took too little work to kill it meaningfully";
  daemons_[0]->Signal(SIGKILL);
  daemons_[0]->Wait(absl::Seconds(10));
  absl::Time killed = absl::Now();

  int taken_over = 0;
  int ambiguous = 0;
  absl::Time last_victim_done = killed;
  for (const std::string& id : ids) {
    v1::Task task = WaitTerminal(1 + static_cast<int>(id.back()) % 2, id, absl::Seconds(60));
    ASSERT_TRUE(IsTerminal(task.state())) << task.ShortDebugString();
    if (task.state() == v1::FAILED) {
      // Killed between create and its record: never sent again.
      EXPECT_EQ(task.error().code(), "SUBMISSION_AMBIGUOUS") << task.ShortDebugString();
      ++ambiguous;
      continue;
    }
    EXPECT_EQ(task.state(), v1::SUCCEEDED) << task.ShortDebugString();
    absl::Time end = absl::FromUnixSeconds(task.end_time().seconds()) +
                     absl::Nanoseconds(task.end_time().nanos());
    if (victims.count(id) > 0 && end > killed) {
      // Created by the dead replica, finished by another.
      int owner = ReplicaOfOutput(task);
      EXPECT_TRUE(owner == 1 || owner == 2) << task.ShortDebugString();
      ++taken_over;
      last_victim_done = std::max(last_victim_done, end);
    }
  }
  std::printf("killed replica: %zu tasks created by it, %d taken over, %d ambiguous; last done "
              "%s after the kill\n",
              victims.size(), taken_over, ambiguous,
              absl::FormatDuration(last_victim_done - killed).c_str());
  EXPECT_GT(taken_over, 0);
  // Its death costs its lease (plus the takeover scan, every lease / 2,
  // and the remaining provider latency), not more.
  EXPECT_LT(last_victim_done - killed,
            kLeaseDuration + kLeaseDuration / 2 + absl::Milliseconds(kLatencyMs) +
                absl::Seconds(5));

  std::map<std::string, int> creates = ReadLedger(ledgers);
  // Every create belongs to a submitted task and happened once (a task
  // failed as ambiguous may have none: killed before the provider saw it).
  std::set<std::string> submitted(ids.begin(), ids.end());
  for (const auto& [id, n] : creates) {
    EXPECT_EQ(submitted.count(id), 1u) << "unknown task " << id << " in the ledger";
    EXPECT_EQ(n, 1) << "task " << id << " created " << n << " times";
  }
  EXPECT_GE(creates.size(), ids.size() - static_cast<size_t>(ambiguous));
}

// The provider tasks a mock ledger records for task `id`.
std::vector<std::string> ProviderTasksOf(const std::string& ledger, const std::string& id) {
  std::ifstream in(ledger);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (parts.size() == 2 && parts[0] == id) out.push_back(parts[1]);
  }
  return out;
}

TEST_F(ReplicasTest, PauseRetryAndAdoptHoldOnTheOtherReplica) {
  const std::string ledger = tmp_.path() + "/ledger";
  StartReplica(0, ledger, 4);
  StartReplica(1, ledger, 4);
  ASSERT_FALSE(HasFailure());
  auto call = [](grpc::Status status) {
    EXPECT_TRUE(status.ok()) << status.error_message();
    return status.ok();
  };

  // Paused on replica 0: replica 1 sends nothing either, and says so.
  v1::PauseBackendRequest pause;
  pause.set_name("mock");
  pause.set_reason("provider outage");
  v1::BackendInfo info;
  ASSERT_TRUE(call(stubs_[0]->PauseBackend(Context(absl::Seconds(5)).get(), pause, &info)));
  EXPECT_TRUE(info.paused());
  absl::SleepFor(absl::Milliseconds(2500));  // longer than a replica's pause re-read
  v1::Task held;
  ASSERT_TRUE(call(stubs_[1]->SubmitTask(Context(absl::Seconds(10)).get(),
                                         Request("paused-1", 1, 100), &held)));
  absl::SleepFor(absl::Seconds(2));
  v1::GetTaskRequest get;
  get.set_id(held.id());
  ASSERT_TRUE(call(stubs_[1]->GetTask(Context(absl::Seconds(5)).get(), get, &held)));
  EXPECT_EQ(held.state(), v1::QUEUED);
  EXPECT_NE(held.provider_status().find("paused"), std::string::npos) << held.provider_status();
  EXPECT_TRUE(ProviderTasksOf(ledger, held.id()).empty());
  v1::ListBackendsResponse backends;
  ASSERT_TRUE(call(stubs_[1]->ListBackends(Context(absl::Seconds(5)).get(),
                                           v1::ListBackendsRequest(), &backends)));
  ASSERT_EQ(backends.backends_size(), 1);
  EXPECT_TRUE(backends.backends(0).paused());
  EXPECT_EQ(backends.backends(0).pause_reason(), "provider outage");
  EXPECT_EQ(backends.backends(0).paused_by(), "anonymous");
  // Resumed on replica 1: the task runs.
  v1::ResumeBackendRequest resume;
  resume.set_name("mock");
  ASSERT_TRUE(call(stubs_[1]->ResumeBackend(Context(absl::Seconds(5)).get(), resume, &info)));
  EXPECT_FALSE(info.paused());
  EXPECT_EQ(WaitTerminal(0, held.id(), absl::Seconds(30)).state(), v1::SUCCEEDED);

  // Retried on replica 0, followed to its end on replica 1.
  v1::SubmitTaskRequest rejected = Request("rejected-1", 2, 100);
  (*rejected.mutable_spec()->mutable_labels())["mock.start_errors"] = "1";
  (*rejected.mutable_spec()->mutable_labels())["mock.start_error"] = "invalid";
  v1::Task failed;
  ASSERT_TRUE(call(stubs_[0]->SubmitTask(Context(absl::Seconds(10)).get(), rejected, &failed)));
  ASSERT_EQ(WaitTerminal(1, failed.id(), absl::Seconds(30)).state(), v1::FAILED);
  v1::RetryTaskRequest retry;
  retry.set_id(failed.id());
  v1::Task retried;
  ASSERT_TRUE(call(stubs_[0]->RetryTask(Context(absl::Seconds(5)).get(), retry, &retried)));
  v1::Task done = WaitTerminal(1, failed.id(), absl::Seconds(30));
  // Each replica's mock refuses a task's first create: a try claimed by the
  // replica that has not yet refused it fails again, and the next succeeds.
  if (done.state() == v1::FAILED) {
    ASSERT_TRUE(call(stubs_[0]->RetryTask(Context(absl::Seconds(5)).get(), retry, &retried)));
    done = WaitTerminal(1, failed.id(), absl::Seconds(30));
    EXPECT_EQ(done.attempts_size(), 3);
  } else {
    EXPECT_EQ(done.attempts_size(), 2);
  }
  EXPECT_EQ(done.state(), v1::SUCCEEDED) << done.ShortDebugString();

  // Ambiguous on replica 1; adopted there, and the adopting replica dies:
  // replica 0 takes the adopted task over and never creates it again.
  v1::SubmitTaskRequest lost = Request("lost-1", 3, 4000);
  (*lost.mutable_spec()->mutable_labels())["mock.start_errors"] = "1";
  (*lost.mutable_spec()->mutable_labels())["mock.start_error"] = "ambiguous";
  v1::Task ambiguous;
  ASSERT_TRUE(call(stubs_[1]->SubmitTask(Context(absl::Seconds(10)).get(), lost, &ambiguous)));
  ambiguous = WaitTerminal(0, ambiguous.id(), absl::Seconds(30));
  ASSERT_EQ(ambiguous.error().code(), "SUBMISSION_AMBIGUOUS");
  retry.set_id(ambiguous.id());
  grpc::Status refused = stubs_[0]->RetryTask(Context(absl::Seconds(5)).get(), retry, &retried);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  std::vector<std::string> found = ProviderTasksOf(ledger, ambiguous.id());
  ASSERT_EQ(found.size(), 1u);
  retry.set_adopt_provider_task_id(found[0]);
  ASSERT_TRUE(call(stubs_[1]->RetryTask(Context(absl::Seconds(5)).get(), retry, &retried)));
  EXPECT_EQ(retried.state(), v1::RUNNING);
  daemons_[1]->Signal(SIGKILL);
  daemons_[1]->Wait(absl::Seconds(10));
  done = WaitTerminal(0, ambiguous.id(), absl::Seconds(40));
  EXPECT_EQ(done.state(), v1::SUCCEEDED) << done.ShortDebugString();
  EXPECT_EQ(done.provider_task_id(), found[0]);
  EXPECT_EQ(ReplicaOfOutput(done), 0);
  EXPECT_EQ(ProviderTasksOf(ledger, ambiguous.id()).size(), 1u);
}

}  // namespace
}  // namespace videotask::testing
