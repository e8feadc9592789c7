// Small helpers every store engine uses.
#ifndef VIDEOTASK_SERVER_STORE_STORE_UTIL_H_
#define VIDEOTASK_SERVER_STORE_STORE_UTIL_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "server/domain/task.h"

namespace videotask::store::internal {

// `status` with "context: " before its message; code and payloads kept.
absl::Status WithContext(const absl::Status& status, absl::string_view context);

// 64 lower-case hex characters.
bool IsHexDigest(absl::string_view sha256);

// INVALID_ARGUMENT when the task names an image digest that is not one
// (checked before an insert is queued).
absl::Status CheckImageDigest(const Task& task);

// INVALID_ARGUMENT unless `sha256` may name a stored image (ReadImage).
absl::Status CheckReadDigest(absl::string_view sha256);

// `clock` when set, else the process's system clock (never destroyed).
const Clock& ClockOrSystem(const Clock* clock);

// The task may have been the last user of its image: SUCCEEDED with an image
// digest. FAILED and CANCELLED tasks keep theirs: they may be retried.
bool MayReleaseImage(const Task& task);

}  // namespace videotask::store::internal

#endif  // VIDEOTASK_SERVER_STORE_STORE_UTIL_H_
