#include "server/domain/daily_budget.h"

#include <cmath>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace videotask {
namespace {

constexpr int64_t kMicrosPerDay = int64_t{86400} * 1'000'000;

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

int64_t UsdToMicros(double usd) {
  if (!std::isfinite(usd) || usd <= 0) return 0;
  if (usd >= 9e12) return int64_t{9'000'000'000'000'000'000};
  return std::llround(usd * kMicrosPerUsd);
}

double MicrosToUsd(int64_t micros) { return static_cast<double>(micros) / kMicrosPerUsd; }

int64_t EstimateCostMicros(double usd_per_second, int seconds) {
  if (seconds <= 0) return 0;
  return UsdToMicros(usd_per_second * seconds);
}

int64_t UtcDay(absl::Time t) { return FloorDiv(absl::ToUnixMicros(t), kMicrosPerDay); }

absl::Time NextUtcMidnight(absl::Time t) {
  return absl::FromUnixMicros((UtcDay(t) + 1) * kMicrosPerDay);
}

std::string FormatUsd(int64_t micros) {
  const bool negative = micros < 0;
  const int64_t abs = negative ? -micros : micros;
  const int64_t dollars = abs / kMicrosPerUsd;
  const int64_t rest = abs % kMicrosPerUsd;
  std::string out = absl::StrFormat("%s$%d.%06d", negative ? "-" : "", dollars, rest);
  // Keep two decimals at least; drop trailing zeros past them.
  while (out.size() > 0 && out.back() == '0' && out.size() - out.find('.') > 3) out.pop_back();
  return out;
}

}  // namespace videotask
