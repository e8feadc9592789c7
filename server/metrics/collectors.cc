#include "server/metrics/collectors.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "absl/strings/str_split.h"
#include "common/thread_name.h"
#include "server/domain/task.h"

namespace videotask::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

ClientMetric GaugeOf(double value, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  return m;
}

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

constexpr TaskState kStates[] = {TaskState::kQueued,    TaskState::kSubmitting,
                                 TaskState::kRunning,   TaskState::kDownloading,
                                 TaskState::kSucceeded, TaskState::kFailed,
                                 TaskState::kCancelled};

}  // namespace

StoreGauges::StoreGauges(StoreGaugesOptions options, store::TaskStore& store, const Clock& clock)
    : options_(std::move(options)), store_(store), clock_(clock) {}

StoreGauges::~StoreGauges() { Stop(); }

void StoreGauges::Start() {
  refresher_ = std::thread([this] {
    SetThreadName("store-gauges");
    absl::MutexLock lock(&mu_);
    while (!stopping_) {
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.refresh_interval);
      if (stopping_) break;
      if (clock_.Now() - snapshot_.read_at < options_.refresh_interval) continue;
      mu_.Unlock();
      (void)Refresh();  // a failed read shows as no data; Refresh logs nothing
      mu_.Lock();
    }
  });
}

void StoreGauges::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (refresher_.joinable()) refresher_.join();
}

std::string StoreGauges::BackendLabel(const std::string& backend) const {
  const auto& names = options_.backends;
  return std::find(names.begin(), names.end(), backend) != names.end() ? backend : "other";
}

absl::Status StoreGauges::Refresh() const {
  absl::MutexLock read_lock(&read_mu_);
  Snapshot next;
  absl::StatusOr<std::vector<store::StateCount>> counts = store_.CountByState();
  absl::StatusOr<std::vector<store::OldestQueued>> oldest = store_.OldestQueuedTimes();
  next.read_at = clock_.Now();
  next.ok = counts.ok() && oldest.ok();
  if (counts.ok()) next.counts = *std::move(counts);
  if (oldest.ok()) next.oldest = *std::move(oldest);
  // Cheap (one row per backend and caller); a failed read shows as 0 spent.
  absl::StatusOr<std::vector<store::DailySpend>> spend = store_.ListDailySpend(next.read_at);
  if (spend.ok()) next.spend = *std::move(spend);
  absl::MutexLock lock(&mu_);
  snapshot_ = std::move(next);
  if (!counts.ok()) return counts.status();
  return oldest.status();
}

std::vector<MetricFamily> StoreGauges::Collect() const {
  bool stale;
  {
    absl::MutexLock lock(&mu_);
    stale = clock_.Now() - snapshot_.read_at >= options_.max_age;
  }
  if (stale) (void)Refresh();
  Snapshot snap;
  {
    absl::MutexLock lock(&mu_);
    snap = snapshot_;
  }
  std::vector<MetricFamily> out;
  if (snap.ok) {
    std::map<std::pair<std::string, int>, int64_t> counts;
    for (const std::string& b : options_.backends) {
      for (TaskState s : kStates) counts[{b, static_cast<int>(s)}] = 0;
    }
    for (const store::StateCount& c : snap.counts) {
      counts[{BackendLabel(c.backend), static_cast<int>(c.state)}] += c.count;
    }
    MetricFamily tasks = Family("videotask_tasks",
                                "Tasks per backend and state in the store (a shared store: every "
                                "process's tasks).",
                                MetricType::Gauge);
    for (const auto& [key, n] : counts) {
      tasks.metric.push_back(GaugeOf(
          static_cast<double>(n),
          {{"backend", key.first},
           {"state", std::string(TaskStateName(static_cast<TaskState>(key.second)))}}));
    }
    out.push_back(std::move(tasks));
    std::map<std::string, double> ages;
    for (const std::string& b : options_.backends) ages[b] = 0;
    for (const store::OldestQueued& o : snap.oldest) {
      double age = std::max(0.0, absl::ToDoubleSeconds(snap.read_at - o.create_time));
      double& slot = ages[BackendLabel(o.backend)];
      slot = std::max(slot, age);
    }
    MetricFamily oldest = Family("videotask_queue_oldest_age_seconds",
                                 "Age of the oldest QUEUED task (0 when none is queued).",
                                 MetricType::Gauge);
    for (const auto& [b, age] : ages) oldest.metric.push_back(GaugeOf(age, {{"backend", b}}));
    out.push_back(std::move(oldest));
    std::map<std::string, int64_t> spent;
    for (const std::string& b : options_.backends) spent[b] = 0;
    for (const store::DailySpend& d : snap.spend) {
      if (d.kind == store::DailySpend::Kind::kBackend) spent[BackendLabel(d.name)] += d.spent_micros;
    }
    MetricFamily spend = Family("videotask_daily_spend_usd",
                                "Estimated cost of the tasks sent to a backend today (UTC), by "
                                "every process sharing the store (daily budgets).",
                                MetricType::Gauge);
    for (const auto& [b, micros] : spent) {
      spend.metric.push_back(GaugeOf(static_cast<double>(micros) / 1e6, {{"backend", b}}));
    }
    out.push_back(std::move(spend));
  }
  MetricFamily up = Family("videotask_store_readable",
                           "1 when the last read of the store's counts succeeded.",
                           MetricType::Gauge);
  up.metric.push_back(GaugeOf(snap.ok ? 1 : 0));
  out.push_back(std::move(up));
  if (options_.watchers) {
    MetricFamily w = Family("videotask_watchers", "Open WatchTask/WaitTask subscriptions.",
                            MetricType::Gauge);
    w.metric.push_back(GaugeOf(static_cast<double>(options_.watchers())));
    out.push_back(std::move(w));
  }
  return out;
}

std::vector<MetricFamily> ProcessCollector::Collect() const {
  std::vector<MetricFamily> out;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold spaces.
  size_t close = stat.rfind(')');
  if (close != std::string::npos && ticks > 0) {
    std::vector<std::string> f =
        absl::StrSplit(stat.substr(close + 2), ' ', absl::SkipEmpty());
    // f[0] is field 3 (state): field n is f[n - 3].
    if (f.size() > 21) {
      double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;  // utime + stime
      MetricFamily c = Family("process_cpu_seconds_total", "User and system CPU time spent.",
                              MetricType::Counter);
      ClientMetric m;
      m.counter.value = cpu;
      c.metric.push_back(m);
      out.push_back(std::move(c));
      MetricFamily v = Family("process_virtual_memory_bytes", "Virtual memory size.",
                              MetricType::Gauge);
      v.metric.push_back(GaugeOf(std::stod(f[20])));
      out.push_back(std::move(v));
      MetricFamily r = Family("process_resident_memory_bytes", "Resident memory size.",
                              MetricType::Gauge);
      r.metric.push_back(GaugeOf(std::stod(f[21]) * page));
      out.push_back(std::move(r));
      // Start time: boot time (/proc/stat btime) + field 22 in ticks.
      std::ifstream proc_stat("/proc/stat");
      std::string line;
      while (std::getline(proc_stat, line)) {
        if (line.rfind("btime ", 0) != 0) continue;
        double start = std::stod(line.substr(6)) + std::stod(f[19]) / ticks;
        MetricFamily s = Family("process_start_time_seconds",
                                "Start time of the process since the Unix epoch.",
                                MetricType::Gauge);
        s.metric.push_back(GaugeOf(start));
        out.push_back(std::move(s));
        break;
      }
    }
  }
  if (DIR* dir = opendir("/proc/self/fd"); dir != nullptr) {
    int fds = 0;
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') ++fds;
    }
    closedir(dir);
    MetricFamily o = Family("process_open_fds", "Open file descriptors.", MetricType::Gauge);
    o.metric.push_back(GaugeOf(fds - 1));  // less the one reading the directory
    out.push_back(std::move(o));
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    MetricFamily m = Family("process_max_fds", "Most open file descriptors allowed.",
                            MetricType::Gauge);
    m.metric.push_back(GaugeOf(static_cast<double>(limit.rlim_cur)));
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace videotask::metrics
