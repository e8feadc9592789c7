// Following tasks to their end (WatchTask streams, WaitTask) and reading
// their outputs (ReadTaskOutput with resume).
#ifndef VIDEOTASK_CLIENT_CLI_FOLLOW_H_
#define VIDEOTASK_CLIENT_CLI_FOLLOW_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/cli/connection.h"
#include "videotask/v1/video_task_service.pb.h"

namespace videotask::cli {

enum class ProgressStyle {
  kLive,       // one line per task, redrawn in place (a terminal)
  kPlain,      // a line per change (a pipe or a file)
  kJsonLines,  // each update as one JSON object per line
  kQuiet,      // nothing
};

// Live on a terminal, plain lines otherwise.
ProgressStyle DefaultProgressStyle(bool json);

// Follows `ids` through one WatchTask stream each (the callback API: no
// thread per task) until every task is terminal, showing progress on `out`.
// A stream broken by a transient error is opened again (a few tries). The
// result holds the last state of each task, in `ids` order.
absl::StatusOr<std::vector<v1::Task>> WatchTasks(Connection& connection,
                                                 const std::vector<std::string>& ids,
                                                 ProgressStyle style, std::ostream& out);

// Calls WaitTask (at most 60 s a call on the server) until the task is
// terminal.
absl::StatusOr<v1::Task> WaitForTask(Connection& connection, const std::string& id);

// 0 when every task SUCCEEDED, else kExitTaskFailed.
int ExitCodeForTasks(const std::vector<v1::Task>& tasks);

struct DownloadResult {
  std::string path;
  int64_t bytes = 0;
  int reconnects = 0;     // streams opened again after a break
  bool unchanged = false;  // the file was already there with this content
};

// Streams the output of task `id` into `path` (written as "<path>.part",
// renamed at the end). A broken stream is resumed at the byte offset reached
// (a few tries); the size and, when the server gives it, the SHA-256 are
// checked. `path` "" = "<stub>.mp4" in `dir` ("" = the current directory).
absl::StatusOr<DownloadResult> DownloadOutput(Connection& connection, const std::string& id,
                                              const std::string& path, const std::string& dir);

}  // namespace videotask::cli

#endif  // VIDEOTASK_CLIENT_CLI_FOLLOW_H_
