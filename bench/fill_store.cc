// videotask-bench-fill: writes tasks straight into a store (SQLite in a data
// dir, or PostgreSQL with --store=postgresql://...), for benchmarks that need a large table (a million tasks
// through gRPC would take most of a benchmark run). Bench-only.
//   videotask-bench-fill --data_dir=D --tasks=1000000 --backend=runway
//   videotask-bench-fill --data_dir=D --tasks=1000000 --mix
//   videotask-bench-fill --data_dir=D --tasks=0 --report      (prints queued=N)
//   videotask-bench-fill --data_dir=D --tasks=0 --explain     (ListTasks query plans)
// With a backend the server does not enable, the tasks stay QUEUED and
// untouched: the engine claims and recovers only tasks of enabled backends.
// --mix writes what a long-used server holds instead, so that ListTasks'
// filters have selective and non-selective values (see Mixed below).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/ids.h"
#include "server/domain/task.h"
#include "server/store/postgres/pg_task_store.h"
#include "server/store/sqlite/sqlite_task_store.h"

ABSL_FLAG(std::string, data_dir, "", "Data dir of the server (created when missing).");
ABSL_FLAG(std::string, store, "sqlite",
          "\"sqlite\" (in --data_dir) or a PostgreSQL connection string (postgresql://...).");
ABSL_FLAG(int64_t, tasks, 1'000'000, "Tasks to add.");
ABSL_FLAG(std::string, backend, "runway", "spec.backend of the tasks.");
ABSL_FLAG(int, batch, 1000, "Tasks per insert (one group commit).");
ABSL_FLAG(bool, report, false, "Print \"queued=N\" (QUEUED tasks, all backends) at the end.");
ABSL_FLAG(bool, mix, false,
          "Mixed tasks: backends runway 60%, kling 25%, veo 14%, luma 1%; states SUCCEEDED "
          "70%, QUEUED 15%, FAILED 12%, CANCELLED 3%; callers render-farm 50%, studio-a 30%, "
          "studio-b 19%, intern 1%; labels team=t0..t9, env=prod|dev, campaign=spring 0.1%. "
          "None is SUBMITTING..DOWNLOADING, so a server enabling none of the backends leaves "
          "them alone.");
ABSL_FLAG(bool, explain, false,
          "Print the query plan of each ListTasks filter the bench measures (first page and "
          "a page after a cursor).");

namespace videotask::bench {
namespace {

// A task as a caller's submit of an https image would leave it.
Task MakeTask(int64_t n, absl::Time created, const std::string& backend, absl::BitGen& rng) {
  Task t;
  t.id = NewTaskId(created, rng);
  t.spec.backend = backend;
  t.spec.model = "gen4_turbo";
  t.spec.image.source = ImageSource::kUri;
  t.spec.image.uri = absl::StrCat("https://images.invalid/bench/", n, ".png");
  t.spec.image.filename = absl::StrCat("bench_", n, ".png");
  t.spec.image.mime_type = "image/png";
  t.spec.prompt_text = "a slow pan across a quiet harbour at dawn";
  t.spec.ratio = "1280:720";
  t.spec.duration_seconds = 4;
  t.spec.labels = {{"team", absl::StrCat("t", n % 10)}, {"env", n % 2 ? "prod" : "dev"}};
  t.target_filename_stub = absl::StrCat("bench_", n, "_video");
  t.state = TaskState::kQueued;
  t.create_time = created;
  t.update_time = created;
  t.spec_fingerprint = SpecFingerprint(t.spec, "");
  return t;
}

uint64_t Mix64(uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Makes `t` one of a mixed table's tasks; independent draws from n.
void Mixed(int64_t n, Task& t) {
  const uint64_t h = Mix64(static_cast<uint64_t>(n));
  const int backend = static_cast<int>(h % 100);
  t.spec.backend = backend < 60 ? "runway" : backend < 85 ? "kling" : backend < 99 ? "veo" : "luma";
  const int caller = static_cast<int>((h >> 8) % 100);
  t.caller = caller < 50 ? "render-farm" : caller < 80 ? "studio-a" : caller < 99 ? "studio-b"
                                                                               : "intern";
  t.spec.labels = {{"team", absl::StrCat("t", (h >> 16) % 10)},
                   {"env", (h >> 24) % 2 ? "prod" : "dev"}};
  if ((h >> 32) % 1000 == 0) t.spec.labels["campaign"] = "spring";
  const int state = static_cast<int>((h >> 44) % 100);
  if (state < 15) return;  // QUEUED
  t.start_time = t.create_time + absl::Seconds(1);
  t.end_time = t.create_time + absl::Seconds(40);
  t.update_time = t.end_time;
  t.attempt_count = 1;
  if (state < 85) {
    t.state = TaskState::kSucceeded;
    t.progress = 1;
    t.provider_task_id = absl::StrCat("p-", n);
  } else if (state < 97) {
    t.state = TaskState::kFailed;
    t.error = {"PROVIDER_ERROR", "the provider refused the image", false, "bad_input"};
  } else {
    t.state = TaskState::kCancelled;
  }
}

// The filters scripts/bench measures on a --mix table (name, query).
std::vector<std::pair<std::string, store::ListQuery>> BenchFilters() {
  std::vector<std::pair<std::string, store::ListQuery>> out;
  auto add = [&](std::string name, auto set) {
    store::ListQuery q;
    q.page_size = 50;
    set(q);
    out.emplace_back(std::move(name), std::move(q));
  };
  add("none", [](store::ListQuery&) {});
  add("state=QUEUED", [](store::ListQuery& q) { q.states = {TaskState::kQueued}; });
  add("state=CANCELLED", [](store::ListQuery& q) { q.states = {TaskState::kCancelled}; });
  add("state=FAILED,CANCELLED",
      [](store::ListQuery& q) { q.states = {TaskState::kFailed, TaskState::kCancelled}; });
  add("backend=runway", [](store::ListQuery& q) { q.backend = "runway"; });
  add("backend=luma", [](store::ListQuery& q) { q.backend = "luma"; });
  add("label team=t3", [](store::ListQuery& q) { q.labels = {{"team", "t3"}}; });
  add("label campaign=spring", [](store::ListQuery& q) { q.labels = {{"campaign", "spring"}}; });
  add("caller=render-farm", [](store::ListQuery& q) { q.caller = "render-farm"; });
  add("caller=intern", [](store::ListQuery& q) { q.caller = "intern"; });
  return out;
}

int Explain(store::internal::TableStore& store) {
  for (auto& [name, query] : BenchFilters()) {
    for (bool after : {false, true}) {
      if (after) query.after = store::ListCursor{absl::Now(), "zzzz"};
      absl::StatusOr<std::vector<std::string>> plan = store.ExplainList(query);
      if (!plan.ok()) {
        std::fprintf(stderr, "videotask-bench-fill: %s\n", plan.status().ToString().c_str());
        return 1;
      }
      std::printf("ListTasks %s, %s:\n", name.c_str(), after ? "after a cursor" : "first page");
      for (const std::string& line : *plan) std::printf("  %s\n", line.c_str());
    }
  }
  return 0;
}

int Run() {
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  const int64_t total = absl::GetFlag(FLAGS_tasks);
  const std::string backend = absl::GetFlag(FLAGS_backend);
  const int batch = std::max(1, absl::GetFlag(FLAGS_batch));
  const bool mix = absl::GetFlag(FLAGS_mix);
  if ((data_dir.empty() && absl::GetFlag(FLAGS_store) == "sqlite") || total < 0) {
    std::fprintf(stderr, "usage: videotask-bench-fill --data_dir=D [--tasks=N] [--backend=B]\n");
    return 2;
  }
  SystemClock clock;
  absl::Status status;
  absl::BitGen rng;
  std::unique_ptr<store::internal::TableStore> store;
  const std::string where = absl::GetFlag(FLAGS_store);
  if (where == "sqlite") {
    store::SqliteStoreOptions options;
    options.data_dir = data_dir;
    options.clock = &clock;
    auto opened = store::SqliteTaskStore::Open(options);
    if (opened.ok()) store = *std::move(opened);
    status = opened.status();
  } else {
    store::PgStoreOptions options;
    options.conninfo = where;
    options.clock = &clock;
    options.listen = false;
    options.origin = store::NewStoreOrigin(rng);
    auto opened = store::PgTaskStore::Open(options);
    if (opened.ok()) store = *std::move(opened);
    status = opened.status();
  }
  if (!status.ok()) {
    std::fprintf(stderr, "videotask-bench-fill: %s\n", status.ToString().c_str());
    return 1;
  }

  // One millisecond apart, ending now: newest-first order is well defined.
  absl::Time first = absl::Now() - absl::Milliseconds(total);
  absl::Mutex mu;
  int outstanding = 0;
  int64_t failed = 0;
  std::string first_error;
  auto start = std::chrono::steady_clock::now();
  for (int64_t n = 0; n < total; n += batch) {
    std::vector<store::NewTask> tasks;
    for (int64_t i = n; i < std::min(total, n + batch); ++i) {
      store::NewTask nt;
      nt.task = MakeTask(i, first + absl::Milliseconds(i), backend, rng);
      if (mix) Mixed(i, nt.task);
      tasks.push_back(std::move(nt));
    }
    {
      absl::MutexLock lock(&mu);
      // A few batches in flight keep the writer busy without unbounded memory.
      mu.Await(absl::Condition(+[](int* o) { return *o < 4; }, &outstanding));
      ++outstanding;
    }
    store->InsertAsync(std::move(tasks), [&](store::InsertResults results) {
      absl::MutexLock lock(&mu);
      for (const auto& r : results) {
        if (r.ok()) continue;
        if (failed++ == 0) first_error = r.status().ToString();
      }
      --outstanding;
    });
  }
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(+[](int* o) { return *o == 0; }, &outstanding));
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (absl::GetFlag(FLAGS_explain) && Explain(*store) != 0) return 1;
  if (absl::GetFlag(FLAGS_report)) {
    absl::StatusOr<int64_t> queued = store->CountQueued();
    if (!queued.ok()) {
      std::fprintf(stderr, "videotask-bench-fill: %s\n", queued.status().ToString().c_str());
      return 1;
    }
    std::printf("queued=%lld\n", static_cast<long long>(*queued));
  }
  store.reset();
  if (failed > 0) {
    std::fprintf(stderr, "videotask-bench-fill: %lld inserts failed, first: %s\n",
                 static_cast<long long>(failed), first_error.c_str());
    return 1;
  }
  std::fprintf(stderr, "videotask-bench-fill: %lld %s tasks in %.1f s\n",
               static_cast<long long>(total), mix ? "mixed" : backend.c_str(), seconds);
  return 0;
}

}  // namespace
}  // namespace videotask::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return videotask::bench::Run();
}
