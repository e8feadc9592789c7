// Durable file helpers (POSIX).
#ifndef VIDEOTASK_COMMON_FILES_H_
#define VIDEOTASK_COMMON_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace videotask {

// Creates `path` and its parents (mode 0755); OK when it exists.
absl::Status MakeDirs(const std::string& path);

// fsyncs a directory so a rename or create in it is durable.
absl::Status SyncDir(const std::string& dir);

struct AtomicWriteOptions {
  // The temp file gets a name of its own in this process (pid and a
  // counter) and is created exclusively, so several threads may write the
  // same `path` at once (the last rename wins). Off: "<path>.tmp.<pid>",
  // truncated when it exists.
  bool unique_temp_name = false;
};

// Writes `data` to a temp file beside `path`, fsyncs it, renames it over
// `path` and fsyncs the directory. The temp file is removed on failure.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view data,
                                 const AtomicWriteOptions& options = {});

// Reads a whole regular file; OUT_OF_RANGE when it is larger than
// `max_bytes`.
absl::StatusOr<std::string> ReadFile(const std::string& path, int64_t max_bytes);

// Status for a failed system call: maps errno to a code, adds context.
// ENOSPC and EDQUOT are RESOURCE_EXHAUSTED and marked (IsNoSpace).
absl::Status ErrnoStatus(int err, absl::string_view what);

// The status came from a write that found its file system (or quota) full.
bool IsNoSpace(const absl::Status& status);

}  // namespace videotask

#endif  // VIDEOTASK_COMMON_FILES_H_
