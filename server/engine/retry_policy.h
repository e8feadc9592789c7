// When a failed provider call is tried again (backoff), and whether (a
// transient status by backends::IsRetryable, while attempts remain).
#ifndef VIDEOTASK_SERVER_ENGINE_RETRY_POLICY_H_
#define VIDEOTASK_SERVER_ENGINE_RETRY_POLICY_H_

#include <optional>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace videotask::engine {

struct RetryPolicy {
  int max_attempts = 5;  // tries of one step, the first included
  absl::Duration initial_backoff = absl::Seconds(2);
  absl::Duration max_backoff = absl::Minutes(2);
  double multiplier = 2.0;

  // Exponential backoff with full jitter: uniform in [0, min(max, initial *
  // multiplier^(attempt-1))], at least 10 ms. `attempt` counts tries made,
  // from 1. A provider's Retry-After wins when it is longer.
  absl::Duration Backoff(int attempt, std::optional<absl::Duration> retry_after,
                         absl::BitGenRef rng) const;

  // Retryable by code and another try is allowed after `attempt` tries.
  bool ShouldRetry(const absl::Status& status, int attempt) const;
};

}  // namespace videotask::engine

#endif  // VIDEOTASK_SERVER_ENGINE_RETRY_POLICY_H_
