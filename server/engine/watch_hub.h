// Fans task changes out to watchers (WatchTask streams, WaitTask calls)
// without a thread per watcher.
#ifndef VIDEOTASK_SERVER_ENGINE_WATCH_HUB_H_
#define VIDEOTASK_SERVER_ENGINE_WATCH_HUB_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/call_once.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "server/domain/task.h"

namespace videotask::engine {

// One change of a task as its watchers see it: the task as stored, copied
// once for all of them, and one value derived from it (the API's reply),
// built by the first watcher that asks and shared by the others. Immutable
// once published apart from that value, which is built once (thread-safe).
class TaskChange {
 public:
  explicit TaskChange(Task task) : task_(std::move(task)) {}
  TaskChange(const TaskChange&) = delete;
  TaskChange& operator=(const TaskChange&) = delete;

  const Task& task() const { return task_; }

  // `build(task())`, made on the first call and shared by every later one.
  // Every caller of one change asks for the same type T.
  template <typename T, typename Build>
  std::shared_ptr<const T> Shared(Build build) const {
    absl::call_once(once_, [&] { derived_ = std::make_shared<const T>(build(task_)); });
    return std::static_pointer_cast<const T>(derived_);
  }

 private:
  const Task task_;
  mutable absl::once_flag once_;
  mutable std::shared_ptr<const void> derived_;
};
using TaskChangePtr = std::shared_ptr<const TaskChange>;

// Thread-safe. Callbacks run on the publishing thread while the hub holds a
// lock for that task's shard: they must be quick and must not block or call
// back into the hub. Once Unsubscribe returns, the callback is not running
// and will not run again.
class WatchHub {
 public:
  // Every watcher of a change gets the same TaskChange.
  using Callback = std::function<void(const TaskChangePtr&)>;
  using DeletedCallback = std::function<void()>;

  // `on_deleted` (optional) runs when the task is deleted (PublishDeleted).
  uint64_t Subscribe(const std::string& task_id, Callback callback,
                     DeletedCallback on_deleted = nullptr);
  void Unsubscribe(const std::string& task_id, uint64_t token);
  // Copies the task once, and only when it has watchers.
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
