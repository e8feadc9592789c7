// Load check of SqliteTaskStore (not a test): durable submit throughput with
// group commit, then List latency on a large table.
//   store_bench <empty data dir> [total_tasks=1000000] [submit_threads=16]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "common/clock.h"
#include "common/ids.h"
#include "server/domain/task.h"
#include "server/store/sqlite/sqlite_task_store.h"

namespace videotask::store {
namespace {

Task MakeTask(int64_t n, absl::Time now, absl::BitGen& rng) {
  Task t;
  t.id = NewTaskId(now, rng);
  t.spec.backend = n % 10 == 0 ? "runway" : "mock";
  t.spec.model = "gen4_turbo";
  t.spec.image.source = ImageSource::kUri;
  t.spec.image.uri = "https://example.com/image.png";
  t.spec.image.filename = "image.png";
  t.spec.prompt_text = "a slow pan across a quiet landscape at dusk";
  t.spec.ratio = "1280:720";
  t.spec.duration_seconds = 4;
  t.spec.labels = {{"team", absl::StrCat("t", n % 10)}, {"env", n % 2 ? "prod" : "dev"}};
  t.caller = absl::StrCat("caller-", (n / 100) % 20);  // QUEUED ones spread over 20 callers
  t.target_filename_stub = absl::StrCat("image_", n, "_video");
  t.state = n % 100 == 0 ? TaskState::kQueued : (n % 7 == 0 ? TaskState::kFailed : TaskState::kSucceeded);
  t.create_time = now;
  t.update_time = now;
  t.spec_fingerprint = SpecFingerprint(t.spec, "");
  return t;
}

double Ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

int Run(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: store_bench <empty data dir> [total] [threads]\n");
    return 2;
  }
  const int64_t total = argc > 2 ? std::atoll(argv[2]) : 1'000'000;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 16;
  SystemClock clock;
  SqliteStoreOptions options;
  options.data_dir = argv[1];
  options.clock = &clock;
  auto opened = SqliteTaskStore::Open(options);
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<SqliteTaskStore> store = *std::move(opened);

  // 1. Durable single-task submits from many threads (each waits for its ack).
  const int per_thread = 500;
  std::atomic<int64_t> next{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      absl::BitGen rng;
      for (int i = 0; i < per_thread; ++i) {
        std::vector<NewTask> batch(1);
        batch[0].task = MakeTask(next.fetch_add(1), clock.Now(), rng);
        InsertResults r = store->Insert(std::move(batch));
        if (!r[0].ok()) std::fprintf(stderr, "insert: %s\n", r[0].status().ToString().c_str());
      }
    });
  }
  for (auto& w : workers) w.join();
  double secs = Ms(std::chrono::steady_clock::now() - start) / 1000;
  SqliteStoreStats stats = store->stats();
  std::printf("durable submits: %d in %.2f s = %.0f/s (%lld commits for %lld ops)\n",
              threads * per_thread, secs, threads * per_thread / secs,
              static_cast<long long>(stats.commits), static_cast<long long>(stats.ops));

  // 2. Bulk load up to `total`.
  start = std::chrono::steady_clock::now();
  absl::BitGen rng;
  while (next.load() < total) {
    std::vector<NewTask> batch;
    for (int i = 0; i < 2000 && next.load() < total; ++i) {
      NewTask n;
      n.task = MakeTask(next.fetch_add(1), clock.Now(), rng);
      batch.push_back(std::move(n));
    }
    for (const auto& r : store->Insert(std::move(batch))) {
      if (!r.ok()) std::fprintf(stderr, "insert: %s\n", r.status().ToString().c_str());
    }
  }
  std::printf("bulk load to %lld tasks: %.1f s\n", static_cast<long long>(total),
              Ms(std::chrono::steady_clock::now() - start) / 1000);

  // 3. List latency: first pages and deep pages through cursors.
  struct Case {
    const char* name;
    ListQuery query;
  };
  std::vector<Case> cases(7);
  cases[0].name = "unfiltered";
  cases[1].name = "state=QUEUED";
  cases[1].query.states = {TaskState::kQueued};
  cases[2].name = "states=SUCCEEDED,FAILED";
  cases[2].query.states = {TaskState::kSucceeded, TaskState::kFailed};
  cases[3].name = "backend=runway";
  cases[3].query.backend = "runway";
  cases[4].name = "label team=t3";
  cases[4].query.labels = {{"team", "t3"}};
  cases[5].name = "QUEUED+label env=prod";
  cases[5].query.states = {TaskState::kQueued};
  cases[5].query.labels = {{"env", "prod"}};
  cases[6].name = "caller=caller-3";
  cases[6].query.caller = "caller-3";
  for (Case& c : cases) {
    std::vector<double> lat;
    ListQuery q = c.query;
    q.page_size = 50;
    for (int i = 0; i < 400; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      auto page = store->List(q);
      lat.push_back(Ms(std::chrono::steady_clock::now() - t0));
      if (!page.ok()) {
        std::fprintf(stderr, "list: %s\n", page.status().ToString().c_str());
        break;
      }
      if (page->has_more && !page->tasks.empty()) {
        q.after = ListCursor{page->tasks.back().create_time, page->tasks.back().id};
      } else {
        q.after.reset();
      }
    }
    std::printf("  first: %.3f %.3f %.3f %.3f %.3f\n", lat[0], lat[1], lat[2], lat[3], lat[4]);
    std::sort(lat.begin(), lat.end());
    std::printf("List %-24s p50 %.3f ms  p99 %.3f ms  max %.3f ms\n", c.name,
                lat[lat.size() / 2], lat[lat.size() * 99 / 100], lat.back());
  }
  auto t0 = std::chrono::steady_clock::now();
  auto count = store->CountQueued();
  std::printf("CountQueued %lld in %.3f ms\n", static_cast<long long>(count.ok() ? *count : -1),
              Ms(std::chrono::steady_clock::now() - t0));
  t0 = std::chrono::steady_clock::now();
  auto caller_count = store->CountQueuedOf("caller-3");
  std::printf("CountQueuedOf(caller-3) %lld in %.3f ms\n",
              static_cast<long long>(caller_count.ok() ? *caller_count : -1),
              Ms(std::chrono::steady_clock::now() - t0));
  // Fair claims among the 20 callers with QUEUED tasks (of runway).
  std::vector<double> claim_ms;
  size_t claimed_total = 0;
  for (int i = 0; i < 50; ++i) {
    t0 = std::chrono::steady_clock::now();
    auto claimed =
        store->ClaimQueued("runway", 10, clock.Now(), "bench", clock.Now() + absl::Minutes(1));
    claim_ms.push_back(Ms(std::chrono::steady_clock::now() - t0));
    claimed_total += claimed.ok() ? claimed->size() : 0;
  }
  std::sort(claim_ms.begin(), claim_ms.end());
  std::printf("ClaimQueued x10, 20 callers: %zu claimed, p50 %.3f ms  max %.3f ms\n",
              claimed_total, claim_ms[claim_ms.size() / 2], claim_ms.back());
  return 0;
}

}  // namespace
}  // namespace videotask::store

int main(int argc, char** argv) { return videotask::store::Run(argc, argv); }
