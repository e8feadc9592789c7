// Crash test: the real videotaskd with the mock backend, many concurrent
// clients submitting, SIGKILL at random moments, restart, repeat. At the end
// every acknowledged task must exist with the spec it was acknowledged with,
// reach a terminal state, and have been created at the provider at most
// once (the mock's ledger, fdatasync'ed per create, survives the kills).
//
//   crash_test --videotaskd=PATH [--rounds=3] [--clients=8] [--seed=N]
// Exit code 0 when every promise held; 1 with the broken ones listed.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/sha256.h"
#include "tests/testing/daemon.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/temp_dir.h"
#include "videotask/v1/video_task_service.grpc.pb.h"

ABSL_FLAG(std::string, videotaskd, VT_VIDEOTASKD_PATH, "The videotaskd binary.");
ABSL_FLAG(int, rounds, 3, "Kill-and-restart rounds.");
ABSL_FLAG(int, clients, 8, "Concurrent submitting clients.");
ABSL_FLAG(uint64_t, seed, 0, "Random seed; 0 = from the clock.");

namespace videotask::testing {
namespace {

namespace v1 = ::videotask::v1;

struct Sent {
  v1::SubmitTaskRequest request;
  std::string sha256;
};

struct Acked {
  Sent sent;
  v1::Task ack;
};

class Ledger {
 public:
  void Ack(const Sent& sent, const v1::Task& task) {
    std::lock_guard<std::mutex> lock(mu_);
    acked_.push_back({sent, task});
  }
  void Uncertain(const Sent& sent) {
    std::lock_guard<std::mutex> lock(mu_);
    uncertain_.push_back(sent);
  }
  std::vector<Sent> TakeUncertain() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(uncertain_, {});
  }
  std::vector<Acked> acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }

 private:
  std::mutex mu_;
  std::vector<Acked> acked_;
  std::vector<Sent> uncertain_;
};

std::vector<std::string> g_failures;
void Fail(const std::string& what) {
  if (g_failures.size() < 50) std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  g_failures.push_back(what);
}

Sent NewRequest(std::mt19937_64& rng, int client, int n) {
  Sent sent;
  v1::SubmitTaskRequest& r = sent.request;
  int seed = static_cast<int>(rng() & 0xffffff);
  std::string png = TinyPng(seed);
  sent.sha256 = Sha256Hex(png);
  r.set_request_id(absl::StrCat("crash-", client, "-", n, "-", rng() % 1000000));
  v1::TaskSpec& spec = *r.mutable_spec();
  spec.mutable_image()->set_content(png);
  spec.mutable_image()->set_filename(absl::StrCat("client", client, "_shot_", n, "_draft.png"));
  spec.set_prompt_text(absl::StrCat("slow zoom ", n, " \xE2\x9C\x93 from client ", client));
  spec.set_ratio(rng() % 2 ? "1280:720" : "720:1280");
  spec.set_duration_seconds(5);
  if (rng() % 2) spec.set_seed(static_cast<uint32_t>(rng()));
  spec.set_priority(static_cast<int>(rng() % 5));
  (*spec.mutable_labels())["mock.latency_ms"] = absl::StrCat(rng() % 1500);
  (*spec.mutable_labels())["mock.progress_steps"] = absl::StrCat(rng() % 4);
  (*spec.mutable_labels())["client"] = absl::StrCat(client);
  return sent;
}

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

// Submits `sent`; true when acknowledged.
bool Submit(v1::VideoTaskService::Stub& stub, const Sent& sent, Ledger& ledger) {
  v1::Task task;
  grpc::Status status = stub.SubmitTask(Context(absl::Seconds(5)).get(), sent.request, &task);
  if (status.ok()) {
    ledger.Ack(sent, task);
    return true;
  }
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
      // The server died around the call: it may or may not be stored. The
      // same request_id is sent again after the restart.
      ledger.Uncertain(sent);
      return false;
    default:
      Fail(absl::StrCat("submit ", sent.request.request_id(), ": ", status.error_code(), " ",
                        status.error_message()));
      return false;
  }
}

bool IsTerminal(v1::State state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED;
}

std::vector<std::string> DaemonArgs(const std::string& work) {
  return {"--data_dir=" + work + "/data",
          "--backends=mock",
          "--mock_ledger=" + work + "/ledger",
          "--mock_poll_interval=20ms",
          "--retry_initial_backoff=20ms",
          "--retry_max_backoff=200ms",
          "--shutdown_grace=2s",
          "--log_level=warn"};
}

int RunCrashTest() {
  const int rounds = absl::GetFlag(FLAGS_rounds);
  const int clients = absl::GetFlag(FLAGS_clients);
  uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (seed == 0) seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  std::printf("crash test: %d rounds, %d clients, seed %llu\n", rounds, clients,
              static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  TempDir tmp;
  const std::string work = tmp.path();
  Daemon daemon(absl::GetFlag(FLAGS_videotaskd), work);
  Ledger ledger;
  int64_t kills = 0;
  absl::Time started = absl::Now();

  for (int round = 0; round <= rounds; ++round) {
    const bool last = round == rounds;
    std::string error;
    if (!daemon.Start(DaemonArgs(work), &error)) {
      Fail(absl::StrCat("round ", round, ": restart failed: ", error));
      break;
    }
    auto stub = v1::VideoTaskService::NewStub(
        grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
    // Requests whose fate a kill left unknown are sent again with the same
    // request_id: the answer must be a task (the stored one or a new one).
    for (const Sent& sent : ledger.TakeUncertain()) {
      v1::Task task;
      grpc::Status status = stub->SubmitTask(Context(absl::Seconds(10)).get(), sent.request, &task);
      if (status.ok()) {
        ledger.Ack(sent, task);
      } else {
        Fail(absl::StrCat("resubmit ", sent.request.request_id(), " after restart: ",
                          status.error_code(), " ", status.error_message()));
      }
    }
    if (last) break;

    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    std::atomic<int> submitted{0};
    for (int c = 0; c < clients; ++c) {
      uint64_t client_seed = rng();
      threads.emplace_back([&, c, client_seed] {
        std::mt19937_64 local(client_seed);
        auto client_stub = v1::VideoTaskService::NewStub(
            grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
        for (int n = 0; !stop.load(); ++n) {
          Sent sent = NewRequest(local, c, round * 100000 + n);
          if (!Submit(*client_stub, sent, ledger)) break;
          submitted.fetch_add(1);
        }
      });
    }
    absl::SleepFor(absl::Milliseconds(300 + static_cast<int>(rng() % 1500)));
    daemon.Signal(SIGKILL);
    daemon.Wait(absl::Seconds(10));
    ++kills;
    stop.store(true);
    for (std::thread& t : threads) t.join();
    std::printf("round %d: %d acknowledged, then SIGKILL\n", round + 1, submitted.load());
  }

  // Final run: no kill. Everything acknowledged must end and match.
  auto stub = v1::VideoTaskService::NewStub(
      grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
  std::vector<Acked> acked = ledger.acked();
  std::map<std::string, std::string> id_of_request;
  std::map<std::string, v1::State> final_state;
  int succeeded = 0, ambiguous = 0;
  absl::Time give_up = absl::Now() + absl::Seconds(120);
  for (const Acked& a : acked) {
    const std::string& id = a.ack.id();
    auto [it, inserted] = id_of_request.emplace(a.sent.request.request_id(), id);
    if (!inserted && it->second != id) {
      Fail(absl::StrCat("request_id ", it->first, " acknowledged as two tasks ", it->second,
                        " and ", id));
    }
    v1::Task task;
    while (true) {
      v1::WaitTaskRequest wait;
      wait.set_id(id);
      wait.mutable_timeout()->set_seconds(10);
      grpc::Status status = stub->WaitTask(Context(absl::Seconds(20)).get(), wait, &task);
      if (!status.ok()) {
        Fail(absl::StrCat("task ", id, ": WaitTask ", status.error_code(), " ",
                          status.error_message()));
        break;
      }
      if (IsTerminal(task.state()) || absl::Now() > give_up) break;
    }
    if (!IsTerminal(task.state())) {
      Fail(absl::StrCat("task ", id, " stuck in state ", v1::State_Name(task.state())));
      continue;
    }
    final_state[id] = task.state();
    if (task.id() != id || task.request_id() != a.sent.request.request_id()) {
      Fail(absl::StrCat("task ", id, ": id or request_id changed"));
    }
    if (!google::protobuf::util::MessageDifferencer::Equals(task.spec(), a.ack.spec())) {
      Fail(absl::StrCat("task ", id, ": spec differs from the acknowledged one:\n",
                        a.ack.spec().DebugString(), "---\n", task.spec().DebugString()));
    }
    const v1::TaskSpec& sent = a.sent.request.spec();
    if (task.spec().prompt_text() != sent.prompt_text() || task.spec().ratio() != sent.ratio() ||
        task.spec().duration_seconds() != sent.duration_seconds() ||
        task.spec().priority() != sent.priority() || task.spec().has_seed() != sent.has_seed() ||
        task.spec().seed() != sent.seed() ||
        task.spec().image().filename() != sent.image().filename()) {
      Fail(absl::StrCat("task ", id, ": spec differs from what was sent"));
    }
    for (const auto& [key, value] : sent.labels()) {
      auto found = task.spec().labels().find(key);
      if (found == task.spec().labels().end() || found->second != value) {
        Fail(absl::StrCat("task ", id, ": label ", key, " lost or changed"));
      }
    }
    if (task.image_sha256() != a.sent.sha256) {
      Fail(absl::StrCat("task ", id, ": image_sha256 ", task.image_sha256(), " != sent ",
                        a.sent.sha256));
    }
    if (task.state() == v1::SUCCEEDED) {
      ++succeeded;
    } else if (task.state() == v1::FAILED && task.error().code() == "SUBMISSION_AMBIGUOUS") {
      ++ambiguous;  // killed while SUBMITTING: truthful, never re-sent
    } else {
      Fail(absl::StrCat("task ", id, " ended ", v1::State_Name(task.state()), " ",
                        task.error().code(), ": ", task.error().message()));
    }
  }

  // Every task in the store (acknowledged or not) must be terminal too.
  std::string page_token;
  int stored = 0;
  do {
    v1::ListTasksRequest list;
    list.set_page_size(1000);
    list.set_page_token(page_token);
    v1::ListTasksResponse response;
    grpc::Status status = stub->ListTasks(Context(absl::Seconds(20)).get(), list, &response);
    if (!status.ok()) {
      Fail(absl::StrCat("ListTasks: ", status.error_message()));
      break;
    }
    for (const v1::Task& t : response.tasks()) {
      ++stored;
      if (!IsTerminal(t.state())) {
        v1::WaitTaskRequest wait;
        wait.set_id(t.id());
        wait.mutable_timeout()->set_seconds(30);
        v1::Task done;
        grpc::Status waited = stub->WaitTask(Context(absl::Seconds(40)).get(), wait, &done);
        if (!waited.ok() || !IsTerminal(done.state())) {
          Fail(absl::StrCat("stored task ", t.id(), " not terminal"));
        }
      }
    }
    page_token = response.next_page_token();
  } while (!page_token.empty());

  // At most one provider create per task, ever; exactly one per success.
  std::map<std::string, int> creates;
  int ledger_lines = 0;
  {
    std::ifstream in(work + "/ledger");
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (parts.size() != 2) {
        Fail(absl::StrCat("malformed ledger line: ", line));
        continue;
      }
      ++ledger_lines;
      ++creates[parts[0]];
    }
  }
  for (const auto& [task_id, count] : creates) {
    if (count > 1) Fail(absl::StrCat("task ", task_id, " created ", count, " times at the provider"));
  }
  for (const auto& [id, state] : final_state) {
    if (state == v1::SUCCEEDED && creates[id] != 1) {
      Fail(absl::StrCat("succeeded task ", id, " has ", creates[id], " ledger entries"));
    }
  }

  daemon.Signal(SIGTERM);
  if (daemon.Wait(absl::Seconds(30)) != 0) Fail("videotaskd did not stop cleanly on SIGTERM");

  std::printf(
      "crash test: %lld kills; %zu acknowledged (%zu distinct), %d succeeded, %d "
      "SUBMISSION_AMBIGUOUS; %d stored; %d provider creates; %.1f s\n",
      static_cast<long long>(kills), acked.size(), id_of_request.size(), succeeded, ambiguous,
      stored, ledger_lines, absl::ToDoubleSeconds(absl::Now() - started));
  if (acked.empty()) Fail("nothing was acknowledged: the test proved nothing");
  if (!g_failures.empty()) {
    std::printf("crash test FAILED: %zu broken promises\n", g_failures.size());
    std::printf("last videotaskd log:\n%s\n", daemon.Log().substr(0, 20000).c_str());
    return 1;
  }
  std::printf("crash test PASSED\n");
  return 0;
}

}  // namespace
}  // namespace videotask::testing

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return videotask::testing::RunCrashTest();
}
