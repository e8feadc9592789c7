// Money and days of the daily budgets: prices in USD per output second,
// costs in integer micro-dollars (never floats in the store), and the UTC
// day a spend belongs to.
#ifndef VIDEOTASK_SERVER_DOMAIN_DAILY_BUDGET_H_
#define VIDEOTASK_SERVER_DOMAIN_DAILY_BUDGET_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace videotask {

inline constexpr int64_t kMicrosPerUsd = 1'000'000;

// USD to whole micro-dollars, rounded to the nearest; negative or not finite
// gives 0.
int64_t UsdToMicros(double usd);
double MicrosToUsd(int64_t micros);
// The estimated cost of `seconds` of output at `usd_per_second`.
int64_t EstimateCostMicros(double usd_per_second, int seconds);

// Days since 1970-01-01 UTC: the key of a day's spend.
int64_t UtcDay(absl::Time t);
// When the UTC day of `t` ends (the next 00:00 UTC): when its budgets reset.
absl::Time NextUtcMidnight(absl::Time t);

// "$1.25": dollars with cents (more digits only when a part of a cent).
std::string FormatUsd(int64_t micros);

}  // namespace videotask

#endif  // VIDEOTASK_SERVER_DOMAIN_DAILY_BUDGET_H_
