// Disk-full safety: submits are refused and downloads wait while the data
// or output folder is short of free space.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/disk_space.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "server/engine/engine.h"
#include "server/engine/transitions.h"

namespace videotask::engine {
namespace {

absl::Status CheckFolder(const DiskSpace& disk, absl::string_view what, const std::string& path,
                         int64_t min_free) {
  if (path.empty()) return absl::OkStatus();
  absl::StatusOr<int64_t> free = disk.FreeBytes(path);
  if (!free.ok()) {
    // A folder that cannot be measured is not a reason to refuse work.
    VT_LOG_WARN("free space of the {} {}: {}", what, path, free.status().ToString());
    return absl::OkStatus();
  }
  if (*free >= min_free) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("the ", what, " is short of disk space: ", HumanBytes(*free), " free of the ",
                   HumanBytes(min_free), " required (--min_free_disk); free some space or lower "
                   "the limit, then retry"));
}

}  // namespace

absl::Status Engine::CheckDiskSpace() const {
  if (options_.disk == nullptr || options_.min_free_disk_bytes <= 0) return absl::OkStatus();
  VT_RETURN_IF_ERROR(CheckFolder(*options_.disk, "data folder", options_.data_dir,
                                 options_.min_free_disk_bytes));
  return CheckFolder(*options_.disk, "output folder", options_.output_dir,
                     options_.min_free_disk_bytes);
}

void Engine::WaitForDisk(Task task, const absl::Status& why) {
  const std::string id = task.id;
  const absl::Time due = clock_.Now() + options_.disk_wait;
  VT_LOG_WARN("download of task {} waits for disk space: {}", id, why.message());
  TaskError error{kErrDiskFull, absl::StrCat("download waits for disk space: ", why.message()),
                  /*retryable=*/true, ""};
  absl::StatusOr<Task> stored = Commit(ToDiskWait(std::move(task), std::move(error), due));
  if (absl::IsAborted(stored.status())) {
    OnConflict(id);
    return;
  }
  // Not recorded (the database's own disk may be full too): the task is
  // still DOWNLOADING in the store, and the fetch is tried again all the same.
  ScheduleStep(id, Step::kFetch, due);
}

absl::Status Engine::CheckOutputSpace() const {
  if (options_.disk == nullptr || options_.min_free_disk_bytes <= 0) return absl::OkStatus();
  return CheckFolder(*options_.disk, "output folder", options_.output_dir,
                     options_.min_free_disk_bytes);
}

}  // namespace videotask::engine
