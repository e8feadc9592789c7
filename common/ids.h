// Task ids: 26 characters of Crockford base32, 48 bits of milliseconds then
// 80 random bits, so ids sort by creation time (ULID layout).
#ifndef VIDEOTASK_COMMON_IDS_H_
#define VIDEOTASK_COMMON_IDS_H_

#include <string>

#include "absl/random/bit_gen_ref.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace videotask {

std::string NewTaskId(absl::Time now, absl::BitGenRef rng);

// True for a string of the shape NewTaskId makes.
bool IsWellFormedTaskId(absl::string_view id);

}  // namespace videotask

#endif  // VIDEOTASK_COMMON_IDS_H_
