#include "client/cli/follow.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <memory>
#include <thread>
#include <utility>

#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/cli/output.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace videotask::cli {
namespace {

constexpr int kMaxStreamRetries = 5;
constexpr int kBarWidth = 24;

bool IsTransient(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded ||
         code == absl::StatusCode::kAborted || code == absl::StatusCode::kUnknown ||
         code == absl::StatusCode::kInternal || code == absl::StatusCode::kCancelled;
}

absl::Duration Backoff(int attempt) {
  return std::min(absl::Milliseconds(250) * (1 << std::min(attempt, 4)), absl::Seconds(4));
}

struct TerminalSize {
  int columns = 100;
  int rows = 40;
};

TerminalSize GetTerminalSize() {
  TerminalSize size;
  struct winsize ws {};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
    if (ws.ws_col > 20) size.columns = ws.ws_col;
    if (ws.ws_row > 4) size.rows = ws.ws_row;
  }
  return size;
}

// What the watchers know, shared between gRPC's callback threads and the
// thread that renders.
class Board {
 public:
  struct Entry {
    std::string id;
    v1::Task task;
    bool have_task = false;
    bool stream_live = false;
    bool dirty = false;
    int failures = 0;             // streams that broke in a row
    absl::Time retry_at;          // when to open the stream again
    absl::Status final_error;     // set when we gave up on this task
  };

  // `clock` is borrowed and outlives the board.
  Board(const std::vector<std::string>& ids, const Clock& clock) : clock_(clock) {
    for (const auto& id : ids) {
      Entry entry;
      entry.id = id;
      entries_.push_back(std::move(entry));
    }
  }

  void Update(size_t index, const v1::Task& task) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    Entry& entry = entries_[index];
    entry.task = task;
    entry.have_task = true;
    entry.dirty = true;
    entry.failures = 0;
    changed_ = true;
  }

  void StreamDone(size_t index, absl::Status status) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    Entry& entry = entries_[index];
    entry.stream_live = false;
    changed_ = true;
    if (entry.have_task && IsTerminal(entry.task.state())) return;
    if (status.ok()) {
      // The stream ended before a terminal state: open it again.
      status = absl::UnavailableError("watch stream ended early");
    }
    if (!IsTransient(status.code()) || ++entry.failures > kMaxStreamRetries) {
      entry.final_error = absl::Status(
          status.code(), absl::StrCat("watching task ", entry.id, ": ", status.message()));
      return;
    }
    entry.retry_at = clock_.Now() + Backoff(entry.failures);
  }

  void MarkLive(size_t index) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    entries_[index].stream_live = true;
  }

  // Waits up to `timeout` for a change; returns a snapshot and clears the
  // dirty flags.
  std::vector<Entry> WaitAndSnapshot(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&changed_), timeout);
    changed_ = false;
    std::vector<Entry> copy = entries_;
    for (Entry& entry : entries_) entry.dirty = false;
    return copy;
  }

  bool AnyLive() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return std::any_of(entries_.begin(), entries_.end(),
                       [](const Entry& e) { return e.stream_live; });
  }

  void AwaitNoneLive() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](std::vector<Entry>* entries) {
          return std::none_of(entries->begin(), entries->end(),
                              [](const Entry& e) { return e.stream_live; });
        },
        &entries_));
  }

 private:
  const Clock& clock_;
  absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  bool changed_ ABSL_GUARDED_BY(mu_) = false;
};

// One WatchTask stream. Owned by the caller, who keeps it until OnDone ran.
class WatchReactor final : public grpc::ClientReadReactor<v1::Task> {
 public:
  WatchReactor(Board& board, size_t index, std::unique_ptr<grpc::ClientContext> ctx)
      : board_(board), index_(index), ctx_(std::move(ctx)) {}

  void Start(v1::VideoTaskService::Stub& stub, const std::string& id) {
    request_.set_id(id);
    stub.async()->WatchTask(ctx_.get(), &request_, this);
    StartRead(&task_);
    StartCall();
  }

  void Cancel() { ctx_->TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    board_.Update(index_, task_);
    StartRead(&task_);
  }

  void OnDone(const grpc::Status& status) override { board_.StreamDone(index_, FromGrpc(status)); }

 private:
  Board& board_;  // outlives the reactor
  const size_t index_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  v1::WatchTaskRequest request_;
  v1::Task task_;
};

std::string DisplayName(const Board::Entry& entry) {
  if (entry.have_task && !entry.task.target_filename_stub().empty()) {
    return entry.task.target_filename_stub();
  }
  return entry.id;
}

std::string StatusText(const Board::Entry& entry) {
  if (!entry.final_error.ok()) return std::string(entry.final_error.message());
  if (!entry.have_task) return "connecting";
  std::string error = TaskErrorText(entry.task);
  if (!error.empty()) return error;
  if (entry.task.state() == v1::SUCCEEDED) {
    return entry.task.output_size_bytes() > 0 ? FormatBytes(entry.task.output_size_bytes()) : "";
  }
  if (entry.task.provider_status() == StateName(entry.task.state())) return "";
  return entry.task.provider_status();
}

std::string LiveLine(const Board::Entry& entry, size_t name_width, int columns) {
  std::string state = entry.have_task ? StateName(entry.task.state()) : "-";
  float progress = entry.have_task ? entry.task.progress() : 0.0f;
  if (entry.have_task && entry.task.state() == v1::SUCCEEDED) progress = 1.0f;
  std::string line = absl::StrFormat("%-*s %s %4s  %-11s %s", name_width, DisplayName(entry),
                                     ProgressBar(progress, kBarWidth), Percent(progress), state,
                                     StatusText(entry));
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return Abbreviate(line, static_cast<size_t>(columns - 1));
}

class Renderer {
 public:
  Renderer(ProgressStyle style, std::ostream& out) : style_(style), out_(out) {}

  void Render(const std::vector<Board::Entry>& entries) {
    switch (style_) {
      case ProgressStyle::kQuiet:
        return;
      case ProgressStyle::kJsonLines:
        for (const auto& entry : entries) {
          if (entry.dirty && entry.have_task) out_ << JsonLine(ProtoToJson(entry.task)) << "\n";
        }
        out_.flush();
        return;
      case ProgressStyle::kPlain:
        RenderPlain(entries);
        return;
      case ProgressStyle::kLive:
        RenderLive(entries);
        return;
    }
  }

 private:
  void RenderLive(const std::vector<Board::Entry>& entries) {
    TerminalSize term = GetTerminalSize();
    // More tasks than the screen holds: the unfinished ones first, then a
    // count line, so the frame never scrolls (it is redrawn from its top).
    size_t max_lines = static_cast<size_t>(std::max(term.rows - 2, 3));
    std::vector<const Board::Entry*> shown;
    std::string tally;
    if (entries.size() <= max_lines) {
      for (const auto& entry : entries) shown.push_back(&entry);
    } else {
      std::map<std::string, int> counts;
      for (const auto& entry : entries) {
        bool done = entry.have_task && IsTerminal(entry.task.state());
        if (!done && shown.size() + 1 < max_lines) shown.push_back(&entry);
        counts[entry.have_task ? StateName(entry.task.state()) : "CONNECTING"]++;
      }
      absl::StrAppend(&tally, entries.size(), " tasks:");
      for (const auto& [state, n] : counts) absl::StrAppend(&tally, " ", n, " ", state);
    }
    size_t width = 0;
    for (const auto* entry : shown) width = std::max(width, DisplayName(*entry).size());
    std::vector<std::string> lines;
    for (const auto* entry : shown) lines.push_back(LiveLine(*entry, width, term.columns));
    if (!tally.empty()) lines.push_back(Abbreviate(tally, static_cast<size_t>(term.columns - 1)));
    while (lines.size() < drawn_lines_) lines.emplace_back();  // clear what a longer frame left
    std::string frame;
    if (drawn_lines_ > 0) absl::StrAppend(&frame, "\x1b[", drawn_lines_, "A");
    for (const auto& line : lines) absl::StrAppend(&frame, "\r\x1b[2K", line, "\n");
    drawn_lines_ = lines.size();
    out_ << frame;
    out_.flush();
  }

  void RenderPlain(const std::vector<Board::Entry>& entries) {
    if (last_.size() != entries.size()) last_.assign(entries.size(), "");
    for (size_t i = 0; i < entries.size(); ++i) {
      const auto& entry = entries[i];
      if (!entry.have_task && entry.final_error.ok()) continue;
      std::string state = entry.have_task ? StateName(entry.task.state()) : "-";
      // A line per state change, per 10% of progress, or a new detail.
      int decile = entry.have_task ? static_cast<int>(entry.task.progress() * 10) : -1;
      std::string key = absl::StrCat(state, " ", decile, " ", StatusText(entry));
      if (key == last_[i]) continue;
      last_[i] = key;
      std::string line = absl::StrFormat("%s %s %s %s %s", entry.id, DisplayName(entry), state,
                                         entry.have_task ? Percent(entry.task.progress()) : "-",
                                         StatusText(entry));
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out_ << line << "\n";
    }
    out_.flush();
  }

  ProgressStyle style_;
  std::ostream& out_;
  size_t drawn_lines_ = 0;
  std::vector<std::string> last_;
};

}  // namespace

ProgressStyle DefaultProgressStyle(bool json) {
  if (json) return ProgressStyle::kJsonLines;
  return isatty(STDOUT_FILENO) ? ProgressStyle::kLive : ProgressStyle::kPlain;
}

absl::StatusOr<std::vector<v1::Task>> WatchTasks(Connection& connection,
                                                 const std::vector<std::string>& ids,
                                                 ProgressStyle style, std::ostream& out) {
  Board board(ids, connection.clock());
  Renderer renderer(style, out);
  std::vector<std::unique_ptr<WatchReactor>> finished;  // kept until the end
  std::vector<std::unique_ptr<WatchReactor>> current(ids.size());
  auto start = [&](size_t i) {
    if (current[i] != nullptr) finished.push_back(std::move(current[i]));
    current[i] = std::make_unique<WatchReactor>(board, i, connection.NewStreamContext());
    board.MarkLive(i);
    current[i]->Start(connection.stub(), ids[i]);
  };
  for (size_t i = 0; i < ids.size(); ++i) start(i);

  absl::Duration tick =
      style == ProgressStyle::kLive ? absl::Milliseconds(150) : absl::Milliseconds(500);
  std::vector<Board::Entry> snapshot;
  while (true) {
    snapshot = board.WaitAndSnapshot(tick);
    renderer.Render(snapshot);
    bool all_done = true;
    absl::Time now = connection.clock().Now();
    for (size_t i = 0; i < snapshot.size(); ++i) {
      const Board::Entry& entry = snapshot[i];
      bool terminal = entry.have_task && IsTerminal(entry.task.state());
      if (terminal || !entry.final_error.ok()) continue;
      all_done = false;
      if (!entry.stream_live && now >= entry.retry_at) start(i);
    }
    if (all_done) break;
  }
  // Streams of terminal tasks end by themselves; cancel any other.
  for (auto& reactor : current) {
    if (reactor != nullptr) reactor->Cancel();
  }
  board.AwaitNoneLive();

  std::vector<v1::Task> tasks;
  absl::Status first_error;
  for (const auto& entry : snapshot) {
    if (!entry.final_error.ok() && first_error.ok()) first_error = entry.final_error;
    tasks.push_back(entry.task);
  }
  if (!first_error.ok()) return first_error;
  return tasks;
}

absl::StatusOr<v1::Task> WaitForTask(Connection& connection, const std::string& id) {
  int failures = 0;
  while (true) {
    v1::WaitTaskRequest request;
    request.set_id(id);
    request.mutable_timeout()->set_seconds(60);
    v1::Task task;
    auto ctx = connection.NewContext(absl::Seconds(75));
    absl::Status status = FromGrpc(connection.stub().WaitTask(ctx.get(), request, &task));
    if (status.ok()) {
      failures = 0;
      if (IsTerminal(task.state())) return task;
      continue;
    }
    if (!IsTransient(status.code()) || ++failures > kMaxStreamRetries) {
      return absl::Status(status.code(), absl::StrCat("waiting for task ", id, ": ", status.message()));
    }
    absl::SleepFor(Backoff(failures));
  }
}

int ExitCodeForTasks(const std::vector<v1::Task>& tasks) {
  for (const auto& task : tasks) {
    if (task.state() != v1::SUCCEEDED) return kExitTaskFailed;
  }
  return kExitOk;
}

namespace {

// An output file being written: "<path>.part", removed unless committed.
class PartFile {
 public:
  explicit PartFile(std::string path) : path_(std::move(path)), part_(path_ + ".part") {}
  ~PartFile() {
    if (fd_ >= 0) close(fd_);
    if (!committed_) unlink(part_.c_str());
  }
  PartFile(const PartFile&) = delete;
  PartFile& operator=(const PartFile&) = delete;

  absl::Status Open() {
    fd_ = open(part_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return ErrnoStatus(errno, absl::StrCat("creating ", part_));
    return absl::OkStatus();
  }

  absl::Status Append(absl::string_view data) {
    while (!data.empty()) {
      ssize_t n = write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, absl::StrCat("writing ", part_));
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  absl::Status Commit() {
    if (fsync(fd_) != 0) return ErrnoStatus(errno, absl::StrCat("syncing ", part_));
    if (close(fd_) != 0) {
      fd_ = -1;
      return ErrnoStatus(errno, absl::StrCat("closing ", part_));
    }
    fd_ = -1;
    if (rename(part_.c_str(), path_.c_str()) != 0) {
      return ErrnoStatus(errno, absl::StrCat("renaming ", part_, " to ", path_));
    }
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  std::string path_;
  std::string part_;
  int fd_ = -1;
  bool committed_ = false;
};

// Where the video goes: `path`, else <dir>/<stub>.mp4 (<id>.mp4 without a stub).
std::string DownloadPath(const v1::Task& task, const std::string& path, const std::string& dir) {
  if (!path.empty()) return path;
  std::string stub = task.target_filename_stub().empty() ? task.id() : task.target_filename_stub();
  if (dir.empty()) return absl::StrCat(stub, ".mp4");
  return absl::StrCat(absl::StripSuffix(dir, "/"), "/", stub, ".mp4");
}

// True when `path` already holds exactly the task's output.
bool AlreadyDownloaded(const v1::Task& task, const std::string& path) {
  if (task.output_sha256().empty()) return false;
  auto existing = ReadFile(path, task.output_size_bytes() + 1);
  return existing.ok() && static_cast<int64_t>(existing->size()) == task.output_size_bytes() &&
         Sha256Hex(*existing) == task.output_sha256();
}

}  // namespace

absl::StatusOr<DownloadResult> DownloadOutput(Connection& connection, const std::string& id,
                                              const std::string& path, const std::string& dir) {
  v1::GetTaskRequest get;
  get.set_id(id);
  v1::Task task;
  {
    auto ctx = connection.NewContext();
    VT_RETURN_IF_ERROR(FromGrpc(connection.stub().GetTask(ctx.get(), get, &task)));
  }
  if (task.state() != v1::SUCCEEDED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "task ", id, " is ", StateName(task.state()), ": it has no output to download yet"));
  }
  DownloadResult result;
  result.path = DownloadPath(task, path, dir);
  if (AlreadyDownloaded(task, result.path)) {
    result.bytes = task.output_size_bytes();
    result.unchanged = true;
    return result;
  }

  PartFile file(result.path);
  VT_RETURN_IF_ERROR(file.Open());
  Sha256 digest;
  int64_t offset = 0;
  int64_t total = -1;
  int failures = 0;
  while (true) {
    v1::ReadTaskOutputRequest request;
    request.set_id(id);
    request.set_offset(offset);
    auto ctx = connection.NewStreamContext();
    auto reader = connection.stub().ReadTaskOutput(ctx.get(), request);
    v1::OutputChunk chunk;
    int64_t offset_before = offset;
    absl::Status local;
    while (reader->Read(&chunk)) {
      if (chunk.offset() != offset) {
        local = absl::DataLossError(absl::StrCat("output of task ", id, ": chunk at offset ",
                                                 chunk.offset(), ", expected ", offset));
        ctx->TryCancel();
        break;
      }
      local = file.Append(chunk.data());
      if (!local.ok()) {
        ctx->TryCancel();
        break;
      }
      digest.Update(chunk.data());
      offset += static_cast<int64_t>(chunk.data().size());
      total = chunk.total_size();
    }
    absl::Status status = FromGrpc(reader->Finish());
    if (!local.ok()) return local;
    if (status.ok()) break;
    if (offset > offset_before) failures = 0;
    if (!IsTransient(status.code()) || status.code() == absl::StatusCode::kCancelled ||
        ++failures > kMaxStreamRetries) {
      return absl::Status(status.code(),
                          absl::StrCat("reading output of task ", id, ": ", status.message()));
    }
    ++result.reconnects;
    absl::SleepFor(Backoff(failures));
  }
  if (total >= 0 && offset != total) {
    return absl::DataLossError(
        absl::StrCat("output of task ", id, ": got ", offset, " bytes of ", total));
  }
  if (!task.output_sha256().empty() && digest.HexDigest() != task.output_sha256()) {
    return absl::DataLossError(absl::StrCat("output of task ", id, ": SHA-256 mismatch"));
  }
  VT_RETURN_IF_ERROR(file.Commit());
  result.bytes = offset;
  return result;
}

}  // namespace videotask::cli
