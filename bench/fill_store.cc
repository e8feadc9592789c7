// videotask-bench-fill: writes QUEUED tasks straight into a data dir through
// SqliteTaskStore, for benchmarks that need a large queue (a million tasks
// through gRPC would take most of a benchmark run). Bench-only.
//   videotask-bench-fill --data_dir=D --tasks=1000000 --backend=runway
//   videotask-bench-fill --data_dir=D --tasks=0 --report      (prints queued=N)
// With a backend the server does not enable, the tasks stay QUEUED and
// untouched: the engine claims and recovers only tasks of enabled backends.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
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
#include "server/store/sqlite/sqlite_task_store.h"

ABSL_FLAG(std::string, data_dir, "", "Data dir of the server (created when missing).");
ABSL_FLAG(int64_t, tasks, 1'000'000, "Tasks to add.");
ABSL_FLAG(std::string, backend, "runway", "spec.backend of the tasks.");
ABSL_FLAG(int, batch, 1000, "Tasks per insert (one group commit).");
ABSL_FLAG(bool, report, false, "Print \"queued=N\" (QUEUED tasks, all backends) at the end.");

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

int Run() {
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  const int64_t total = absl::GetFlag(FLAGS_tasks);
  const std::string backend = absl::GetFlag(FLAGS_backend);
  const int batch = std::max(1, absl::GetFlag(FLAGS_batch));
  if (data_dir.empty() || total < 0) {
    std::fprintf(stderr, "usage: videotask-bench-fill --data_dir=D [--tasks=N] [--backend=B]\n");
    return 2;
  }
  SystemClock clock;
  store::SqliteStoreOptions options;
  options.data_dir = data_dir;
  options.clock = &clock;
  auto opened = store::SqliteTaskStore::Open(options);
  if (!opened.ok()) {
    std::fprintf(stderr, "videotask-bench-fill: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<store::SqliteTaskStore> store = *std::move(opened);

  // One millisecond apart, ending now: newest-first order is well defined.
  absl::Time first = absl::Now() - absl::Milliseconds(total);
  absl::BitGen rng;
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
               static_cast<long long>(total), backend.c_str(), seconds);
  return 0;
}

}  // namespace
}  // namespace videotask::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return videotask::bench::Run();
}
