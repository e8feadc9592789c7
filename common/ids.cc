#include "common/ids.h"

#include <cstdint>
#include <string>

#include "absl/random/distributions.h"

namespace videotask {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr int kIdLength = 26;

}  // namespace

std::string NewTaskId(absl::Time now, absl::BitGenRef rng) {
  uint64_t millis = static_cast<uint64_t>(absl::ToUnixMillis(now)) & ((uint64_t{1} << 48) - 1);
  uint64_t hi = absl::Uniform<uint64_t>(rng) & ((uint64_t{1} << 16) - 1);  // 16 bits
  uint64_t lo = absl::Uniform<uint64_t>(rng);                            // 64 bits
  // 128 bits: millis(48) | hi(16) | lo(64); 26 base32 digits hold 130 bits.
  std::string out(kIdLength, '0');
  for (int i = kIdLength - 1; i >= 0; --i) {
    int digit = static_cast<int>(lo & 31);
    lo = (lo >> 5) | ((hi & 31) << 59);
    hi = (hi >> 5) | ((millis & 31) << 11);
    millis >>= 5;
    out[i] = kAlphabet[digit];
  }
  return out;
}

bool IsWellFormedTaskId(absl::string_view id) {
  if (id.size() != kIdLength) return false;
  for (char c : id) {
    bool ok = false;
    for (const char* a = kAlphabet; *a != '\0'; ++a) ok = ok || (*a == c);
    if (!ok) return false;
  }
  return true;
}

}  // namespace videotask
