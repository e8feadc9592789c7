// A fixed set of connections lent out one caller at a time (the SQLite
// readers, the PostgreSQL pool).
#ifndef VIDEOTASK_SERVER_STORE_RESOURCE_POOL_H_
#define VIDEOTASK_SERVER_STORE_RESOURCE_POOL_H_

#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace videotask::store::internal {

// Thread-safe once filled: Add every item before the first Acquire.
template <typename T>
class ResourcePool {
 public:
  // One item, given back to the pool when the lease ends.
  class Lease {
   public:
    Lease(ResourcePool* pool, T* item) : pool_(pool), item_(item) {}
    Lease(Lease&& other) noexcept : pool_(other.pool_), item_(other.item_) {
      other.item_ = nullptr;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (item_ != nullptr) pool_->Release(item_);
    }
    T& get() const { return *item_; }

   private:
    ResourcePool* pool_;
    T* item_;
  };

  void Add(std::unique_ptr<T> item) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    free_.push_back(item.get());
    items_.push_back(std::move(item));
  }

  // Waits until an item is free.
  Lease Acquire() ABSL_LOCKS_EXCLUDED(mu_) {
    mu_.LockWhen(absl::Condition(
        +[](std::vector<T*>* free) { return !free->empty(); }, &free_));
    T* item = free_.back();
    free_.pop_back();
    mu_.Unlock();
    return Lease(this, item);
  }

  // Any item, for logging what the pool is connected to (none: null).
  T* any() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return items_.empty() ? nullptr : items_.front().get();
  }

 private:
  void Release(T* item) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    free_.push_back(item);
  }

  absl::Mutex mu_;
  std::vector<std::unique_ptr<T>> items_ ABSL_GUARDED_BY(mu_);
  std::vector<T*> free_ ABSL_GUARDED_BY(mu_);
};

}  // namespace videotask::store::internal

#endif  // VIDEOTASK_SERVER_STORE_RESOURCE_POOL_H_
