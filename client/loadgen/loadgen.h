// A closed-loop load generator for VideoTaskService on gRPC's callback
// client API: `in_flight` calls stay outstanding over `channels` separate
// connections; each completion starts the next call at once. Calls that
// complete during the warm-up are not counted; the measured window follows.
#ifndef VIDEOTASK_CLIENT_LOADGEN_LOADGEN_H_
#define VIDEOTASK_CLIENT_LOADGEN_LOADGEN_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/channel/channel.h"

namespace videotask::loadgen {

enum class Mode {
  kSubmit,     // SubmitTask with an inline image, a unique request_id each
  kBatch,      // BatchSubmitTasks of batch_size such requests
  kGet,        // GetTask on ids listed from the server before the run
  kList,       // ListTasks pages of page_size, following next_page_token
  kEndToEnd,   // SubmitTask, then WaitTask until the task is terminal
};

// "submit", "batch", "get", "list", "e2e".
absl::string_view ModeName(Mode mode);
absl::StatusOr<Mode> ParseMode(absl::string_view name);

struct LoadOptions {
  // The server (channel.target, host:port), TLS and the bearer token.
  client::ChannelOptions channel;
  Mode mode = Mode::kSubmit;
  int in_flight = 64;
  int channels = 4;
  absl::Duration warmup = absl::Seconds(2);
  absl::Duration duration = absl::Seconds(10);
  // When > 0: no warm-up and no time limit; stops once this many items
  // (tasks submitted, returned or finished) were started. For filling a queue.
  int64_t max_items = 0;
  int64_t image_bytes = 1024;
  int batch_size = 100;
  int page_size = 100;
  // ListTasks: pages followed before a slot starts again at the first page.
  int list_depth = 100;
  // Spec of submitted tasks.
  std::string backend;  // "" = the server's default
  std::map<std::string, std::string> labels;
  absl::Duration rpc_timeout = absl::Seconds(30);
  // Gives each submitted image its own bytes (and digest); otherwise every
  // submit carries the same image.
  bool unique_images = true;
  // Processes (server pids on this machine) whose CPU time, user + system
  // from /proc/PID/stat, is read when the measured window opens and closes.
  std::vector<int> server_pids;
};

struct LoadResult {
  double seconds = 0;  // length of the measured window
  int64_t calls = 0;   // calls that completed OK in the window
  int64_t items = 0;   // tasks submitted / returned / finished in the window
  std::vector<int64_t> latency_ns;     // of the calls counted, sorted
  std::map<std::string, int64_t> errors;  // code -> count, in the window
  // CPU time the server_pids spent during the measured window, summed;
  // -1 when none were given or one could not be read.
  int64_t server_cpu_us = -1;

  double CallsPerSecond() const { return seconds > 0 ? calls / seconds : 0; }
  double ItemsPerSecond() const { return seconds > 0 ? items / seconds : 0; }
  // Server CPU microseconds per op: per item (task submitted or finished),
  // per call for list; -1 when unknown.
  double ServerCpuUsPerOp(Mode mode) const;
  // Latency at quantile q (0..1) in milliseconds; 0 without samples.
  double LatencyMs(double q) const;
};

// User + system CPU time of process `pid` so far, from /proc/PID/stat.
absl::StatusOr<int64_t> ProcessCpuMicros(int pid);

// Runs the load and returns what it measured. Errors of individual calls
// are counted in the result; a returned error means the run itself could
// not happen (bad options, no task ids to get).
absl::StatusOr<LoadResult> RunLoad(const LoadOptions& options);

// One line for scripts: "RESULT mode=submit in_flight=64 ... errors=none".
std::string FormatResultLine(const LoadOptions& options, const LoadResult& result);
// A few lines for people.
std::string FormatSummary(const LoadOptions& options, const LoadResult& result);

}  // namespace videotask::loadgen

#endif  // VIDEOTASK_CLIENT_LOADGEN_LOADGEN_H_
