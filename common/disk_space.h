// Free space of a file system, behind a small interface so the engine's
// disk checks can be tested with a fake.
#ifndef VIDEOTASK_COMMON_DISK_SPACE_H_
#define VIDEOTASK_COMMON_DISK_SPACE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace videotask {

class DiskSpace {
 public:
  virtual ~DiskSpace() = default;
  // Bytes an unprivileged writer may still use on the file system holding
  // `path`. Thread-safe.
  virtual absl::StatusOr<int64_t> FreeBytes(const std::string& path) const = 0;
};

// statvfs(2): f_bavail * f_frsize.
class StatvfsDiskSpace final : public DiskSpace {
 public:
  absl::StatusOr<int64_t> FreeBytes(const std::string& path) const override;
};

// "1.5 GiB", "512 MiB", "42 B": for messages.
std::string HumanBytes(int64_t bytes);

}  // namespace videotask

#endif  // VIDEOTASK_COMMON_DISK_SPACE_H_
