// Metrics read when scraped rather than counted as things happen: the tasks
// per state and the queue's oldest age (from the store's counts, cached for
// a second so that many scrapers cost one read), the open watchers, and the
// process's own figures (memory, fds, CPU, start time).
#ifndef VIDEOTASK_SERVER_METRICS_COLLECTORS_H_
#define VIDEOTASK_SERVER_METRICS_COLLECTORS_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/store/task_store.h"

namespace videotask::metrics {

struct StoreGaugesOptions {
  // The enabled backends: each gets a series per state (zeros included);
  // counts of other backends are summed under "other".
  std::vector<std::string> backends;
  // Reads within this age of the last one answer from the cache.
  absl::Duration max_age = absl::Seconds(1);
  // Without scrapes, the counts are still read this often (a shared store
  // folds its pending deltas when read, keeping them few).
  absl::Duration refresh_interval = absl::Seconds(15);
  // Open watchers; null = not reported.
  std::function<int64_t()> watchers;
};

class StoreGauges final : public prometheus::Collectable {
 public:
  // `store` and `clock` are borrowed and outlive this object.
  StoreGauges(StoreGaugesOptions options, store::TaskStore& store, const Clock& clock);
  ~StoreGauges() override;

  // Starts / stops the background refresh.
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  std::vector<prometheus::MetricFamily> Collect() const override ABSL_LOCKS_EXCLUDED(mu_);

  // Reads the store now. The last error, if the read failed.
  absl::Status Refresh() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Snapshot {
    std::vector<store::StateCount> counts;
    std::vector<store::OldestQueued> oldest;
    std::vector<store::DailySpend> spend;  // today's (UTC), daily budgets
    absl::Time read_at = absl::InfinitePast();
    bool ok = false;
  };
  std::string BackendLabel(const std::string& backend) const;

  const StoreGaugesOptions options_;
  store::TaskStore& store_;
  const Clock& clock_;
  mutable absl::Mutex read_mu_;  // one store read at a time
  mutable absl::Mutex mu_;
  mutable Snapshot snapshot_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread refresher_;
};

// process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds, read from /proc/self.
class ProcessCollector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace videotask::metrics

#endif  // VIDEOTASK_SERVER_METRICS_COLLECTORS_H_
