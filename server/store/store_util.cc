#include "server/store/store_util.h"

#include <algorithm>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace videotask::store::internal {

absl::Status WithContext(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  absl::Status out(status.code(), absl::StrCat(context, ": ", status.message()));
  status.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

bool IsHexDigest(absl::string_view sha256) {
  if (sha256.size() != 64) return false;
  return std::all_of(sha256.begin(), sha256.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

absl::Status CheckImageDigest(const Task& task) {
  if (task.image_sha256.empty() || IsHexDigest(task.image_sha256)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("task ", task.id, ": image_sha256 is not a lower-case hex digest"));
}

absl::Status CheckReadDigest(absl::string_view sha256) {
  if (IsHexDigest(sha256)) return absl::OkStatus();
  return absl::InvalidArgumentError("image digest must be 64 lower-case hex characters");
}

const Clock& ClockOrSystem(const Clock* clock) {
  static const SystemClock* const kSystem = new SystemClock();
  return clock != nullptr ? *clock : *kSystem;
}

bool MayReleaseImage(const Task& task) {
  return task.state == TaskState::kSucceeded && !task.image_sha256.empty();
}

}  // namespace videotask::store::internal
