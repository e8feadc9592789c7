#include "server/engine/retry_policy.h"

#include <algorithm>
#include <cmath>

#include "absl/random/distributions.h"
#include "backends/api/errors.h"

namespace videotask::engine {

absl::Duration RetryPolicy::Backoff(int attempt, std::optional<absl::Duration> retry_after,
                                    absl::BitGenRef rng) const {
  double exp = std::pow(multiplier, std::max(0, attempt - 1));
  absl::Duration ceiling = std::min(max_backoff, initial_backoff * exp);
  double fraction = absl::Uniform<double>(rng, 0.0, 1.0);
  absl::Duration delay = std::max(absl::Milliseconds(10), ceiling * fraction);
  if (retry_after.has_value() && *retry_after > delay) delay = *retry_after;
  return delay;
}

bool RetryPolicy::ShouldRetry(const absl::Status& status, int attempt) const {
  return backends::IsRetryable(status) && attempt < max_attempts;
}

}  // namespace videotask::engine
