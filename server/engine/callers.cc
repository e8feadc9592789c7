// The per-caller QUEUED limit (EngineOptions::max_queued_per_caller): kept
// counts, read from the store at most once a second per caller and kept up
// to date in between by this process's submits, claims and cancels. With
// several processes sharing a store, each sees the others' submits within
// that second, so a caller may pass its limit by what other processes
// accepted from it in the last second.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/text.h"
#include "server/engine/engine.h"

namespace videotask::engine {
namespace {

constexpr absl::Duration kCountRefresh = absl::Seconds(1);

}  // namespace

std::vector<absl::Status> Engine::ReserveCallerSlots(const std::vector<store::NewTask>& tasks,
                                                     absl::Time now) {
  const int64_t limit = options_.max_queued_per_caller;
  if (limit <= 0 || tasks.empty()) return {};
  // Counts older than a second are read again, outside the lock.
  std::vector<std::string> stale;
  {
    absl::MutexLock lock(&mu_);
    for (const store::NewTask& nt : tasks) {
      auto it = caller_counts_.find(nt.task.caller);
      bool fresh = it != caller_counts_.end() && now - it->second.checked <= kCountRefresh;
      if (!fresh && std::find(stale.begin(), stale.end(), nt.task.caller) == stale.end()) {
        stale.push_back(nt.task.caller);
      }
    }
  }
  for (const std::string& caller : stale) {
    absl::StatusOr<int64_t> queued = store_.CountQueuedOf(caller);
    absl::MutexLock lock(&mu_);
    CallerCount& count = caller_counts_[caller];
    if (!queued.ok()) {
      VT_LOG_WARN("counting the QUEUED tasks of caller {} failed: {}", caller,
                  queued.status().ToString());
      continue;  // the kept count stands
    }
    count.queued = *queued;
    count.checked = now;
  }
  std::vector<absl::Status> allowed;
  allowed.reserve(tasks.size());
  absl::MutexLock lock(&mu_);
  for (const store::NewTask& nt : tasks) {
    CallerCount& count = caller_counts_[nt.task.caller];
    if (count.queued + count.reserved >= limit) {
      allowed.push_back(absl::ResourceExhaustedError(absl::StrCat(
          "caller ", nt.task.caller, " has ", count.queued + count.reserved,
          " QUEUED tasks, its limit (--max_queued_per_caller=", limit,
          "); retry when some have started")));
      continue;
    }
    ++count.reserved;
    allowed.push_back(absl::OkStatus());
  }
  return allowed;
}

void Engine::CallerInserted(const std::vector<std::string>& callers,
                            const store::InsertResults& results) {
  for (size_t i = 0; i < callers.size() && i < results.size(); ++i) {
    CallerCount& count = caller_counts_[callers[i]];
    --count.reserved;
    if (results[i].ok() && results[i]->created) ++count.queued;
  }
}

void Engine::CallerLeftQueue(const std::string& caller) {
  auto it = caller_counts_.find(caller);
  if (it != caller_counts_.end() && it->second.queued > 0) --it->second.queued;
}

}  // namespace videotask::engine
