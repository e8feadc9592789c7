// Minimum interval between two task creations at one provider.
#ifndef VIDEOTASK_SERVER_ENGINE_RATE_LIMITER_H_
#define VIDEOTASK_SERVER_ENGINE_RATE_LIMITER_H_

#include "absl/time/time.h"

namespace videotask::engine {

// Not thread-safe: the dispatcher owns it under its own lock. Callers
// schedule against NextFree(); nothing here sleeps.
class RateLimiter {
 public:
  explicit RateLimiter(absl::Duration min_interval) : min_interval_(min_interval) {}
  // When the next creation may go.
  absl::Time NextFree() const { return next_free_; }
  // True (and the slot taken) when a creation may go at `now`.
  bool TryAcquire(absl::Time now) {
    if (now < next_free_) return false;
    next_free_ = now + min_interval_;
    return true;
  }
  absl::Duration min_interval() const { return min_interval_; }

 private:
  absl::Duration min_interval_;
  absl::Time next_free_ = absl::InfinitePast();
};

}  // namespace videotask::engine

#endif  // VIDEOTASK_SERVER_ENGINE_RATE_LIMITER_H_
