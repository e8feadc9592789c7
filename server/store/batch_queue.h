// The queue behind group commit: callers push requests, a few consumer
// threads take them in batches, one transaction per batch.
#ifndef VIDEOTASK_SERVER_STORE_BATCH_QUEUE_H_
#define VIDEOTASK_SERVER_STORE_BATCH_QUEUE_H_

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace videotask::store::internal {

// Thread-safe.
template <typename T>
class BatchQueue {
 public:
  // Opens the queue for `consumers` threads (call before they start).
  void Start(int consumers) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    running_ = consumers;
  }

  // Queues `item`; false (item untouched) when no consumer runs: never
  // started, or every one has exited after Stop().
  bool Push(T& item) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (running_ <= 0) return false;
    queue_.push_back(std::move(item));
    return true;
  }

  // Waits for work and takes up to `max` items, oldest first. Empty once
  // Stop() was called and the queue is drained: the consumer must exit
  // (it is counted out, and the last one out closes the queue).
  std::vector<T> Pop(size_t max) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](BatchQueue* q)
             ABSL_NO_THREAD_SAFETY_ANALYSIS { return !q->queue_.empty() || q->stopping_; },
        this));
    std::vector<T> batch;
    if (queue_.empty()) {
      --running_;
      return batch;
    }
    const size_t n = std::min(max, queue_.size());
    if (n == queue_.size()) {
      batch.swap(queue_);
      return batch;
    }
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) batch.push_back(std::move(queue_[i]));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    return batch;
  }

  // Consumers finish what is queued, then Pop returns empty.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }

  // After the consumers were joined (or never started): Push fails.
  void Close() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    running_ = 0;
  }

 private:
  absl::Mutex mu_;
  std::vector<T> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace videotask::store::internal

#endif  // VIDEOTASK_SERVER_STORE_BATCH_QUEUE_H_
