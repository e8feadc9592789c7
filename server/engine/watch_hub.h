// Fans task changes out to watchers (WatchTask streams, WaitTask calls)
// without a thread per watcher.
#ifndef VIDEOTASK_SERVER_ENGINE_WATCH_HUB_H_
#define VIDEOTASK_SERVER_ENGINE_WATCH_HUB_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "server/domain/task.h"

namespace videotask::engine {

// Thread-safe. Callbacks run on the publishing thread while the hub holds a
// lock for that task's shard: they must be quick and must not block or call
// back into the hub. Once Unsubscribe returns, the callback is not running
// and will not run again.
class WatchHub {
 public:
  using Callback = std::function<void(const Task&)>;
  using DeletedCallback = std::function<void()>;

  // `on_deleted` (optional) runs when the task is deleted (PublishDeleted).
  uint64_t Subscribe(const std::string& task_id, Callback callback,
                     DeletedCallback on_deleted = nullptr);
  void Unsubscribe(const std::string& task_id, uint64_t token);
  void Publish(const Task& task);
  // The task is gone from the store: its watchers are told so.
  void PublishDeleted(const std::string& task_id);
  // Number of live subscriptions (for tests and metrics).
  int64_t size() const;

 private:
  struct Watcher {
    Callback on_change;
    DeletedCallback on_deleted;
  };
  struct Shard {
    mutable absl::Mutex mu;
    absl::flat_hash_map<std::string, absl::flat_hash_map<uint64_t, Watcher>> watchers
        ABSL_GUARDED_BY(mu);
  };
  Shard& ShardFor(const std::string& task_id);

  std::array<Shard, 16> shards_;
  absl::Mutex token_mu_;
  uint64_t next_token_ ABSL_GUARDED_BY(token_mu_) = 1;
};

}  // namespace videotask::engine

#endif  // VIDEOTASK_SERVER_ENGINE_WATCH_HUB_H_
