#include "server/api/reactors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <optional>
#include <string>


#include "absl/strings/str_cat.h"
#include "server/api/mapping.h"
#include "server/engine/watch_hub.h"

namespace videotask::api {
namespace {

// How a watch or wait on a task that was deleted meanwhile ends.
grpc::Status DeletedStatus(const std::string& id) {
  return grpc::Status(grpc::StatusCode::NOT_FOUND,
                      absl::StrCat("task ", id, " was deleted (DeleteTask or retention)"));
}

// The reply for a change, built by the first watcher of it that asks.
std::shared_ptr<const v1::Task> Reply(const VideoTaskServiceImpl& service,
                                      const engine::TaskChange& change) {
  return change.Shared<v1::Task>([&](const Task& task) { return service.Describe(task); });
}

// WatchTask: the current state, then each change, coalescing what a slow
// reader has not taken yet; ends after a terminal state.
class WatchReactor final : public grpc::ServerWriteReactor<v1::Task>, public Drainable {
 public:
  WatchReactor(VideoTaskServiceImpl& service, const std::string& id)
      : service_(service), id_(id) {
    service_.AddStream(this);
    token_ = service_.hub().Subscribe(
        id_, [this](const engine::TaskChangePtr& change) { OnChange(change); },
        [this] { FinishOnce(DeletedStatus(id_)); });
    absl::StatusOr<Task> current = service_.store().Get(id_);
    if (!current.ok()) {
      FinishOnce(ToGrpcStatus(current.status()));
      return;
    }
    OnChange(std::make_shared<const engine::TaskChange>(*std::move(current)));
  }

  void Drain() override {
    FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "the server is shutting down; watch again to resume"));
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    sending_.reset();
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the stream broke"));
      return;
    }
    if (sent_terminal_) {
      FinishLocked(grpc::Status::OK);
      return;
    }
    WriteLocked();
  }

  void OnCancel() override { FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled")); }

  void OnDone() override {
    service_.hub().Unsubscribe(id_, token_);
    service_.RemoveStream(this);
    delete this;
  }

 private:
  void OnChange(const engine::TaskChangePtr& change) {
    absl::MutexLock lock(&mu_);
    if (finished_ || change->task().version <= latest_version_) return;
    latest_version_ = change->task().version;
    pending_ = change;
    WriteLocked();
  }

  void WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || pending_ == nullptr) return;
    // Built once per change, shared with every other watcher of it.
    sending_ = Reply(service_, *pending_);
    sent_terminal_ = IsTerminal(pending_->task().state);
    pending_.reset();
    writing_ = true;
    StartWrite(sending_.get());
  }

  void FinishOnce(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    FinishLocked(status);
  }

  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  VideoTaskServiceImpl& service_;
  const std::string id_;
  uint64_t token_ = 0;
  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool sent_terminal_ ABSL_GUARDED_BY(mu_) = false;
  int64_t latest_version_ ABSL_GUARDED_BY(mu_) = -1;
  engine::TaskChangePtr pending_ ABSL_GUARDED_BY(mu_);  // not yet written
  // What is being written; gRPC reads it until OnWriteDone.
  std::shared_ptr<const v1::Task> sending_ ABSL_GUARDED_BY(mu_);
};

// WaitTask: answers at the first terminal state, or with the latest state
// when the timeout passes. Deletes itself once OnDone has run and the
// timeout has run or been cancelled.
class WaitReactor final : public grpc::ServerUnaryReactor, public Drainable {
 public:
  WaitReactor(VideoTaskServiceImpl& service, const std::string& id, absl::Time deadline,
              v1::Task* reply)
      : service_(service), id_(id), reply_(reply) {
    // Armed first, so OnDone's Cancel always finds it.
    timer_ = service_.timers().Schedule(deadline, [this] {
      FinishWithLatest();
      Unref();
    });
    service_.AddStream(this);
    token_ = service_.hub().Subscribe(
        id_, [this](const engine::TaskChangePtr& change) { OnChange(change); },
        [this] { FinishOnce(DeletedStatus(id_)); });
    absl::StatusOr<Task> current = service_.store().Get(id_);
    if (!current.ok()) {
      FinishOnce(ToGrpcStatus(current.status()));
    } else {
      OnChange(std::make_shared<const engine::TaskChange>(*std::move(current)));
    }
  }

  void Drain() override { FinishWithLatest(); }
  void OnCancel() override { FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled")); }
  void OnDone() override {
    service_.hub().Unsubscribe(id_, token_);
    service_.RemoveStream(this);
    if (service_.timers().Cancel(timer_)) Unref();  // the timer will not run
    Unref();
  }

 private:
  void Unref() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

  void OnChange(const engine::TaskChangePtr& change) {
    absl::MutexLock lock(&mu_);
    if (finished_ || change->task().version <= latest_version_) return;
    latest_version_ = change->task().version;
    latest_ = change;
    if (IsTerminal(change->task().state)) {
      // Built in place: the reply lives on the call's arena, and a waiter
      // is most often its task's only subscriber, so there is no shared
      // reply to copy from.
      service_.Describe(change->task(), *reply_);
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  void FinishWithLatest() {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    if (latest_ != nullptr) {
      service_.Describe(latest_->task(), *reply_);
      Finish(grpc::Status::OK);
    } else {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the task could not be read"));
    }
  }

  void FinishOnce(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  VideoTaskServiceImpl& service_;
  const std::string id_;
  v1::Task* reply_;
  uint64_t token_ = 0;
  uint64_t timer_ = 0;
  std::atomic<int> refs_{2};  // OnDone + the timeout callback
  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  int64_t latest_version_ ABSL_GUARDED_BY(mu_) = -1;
  engine::TaskChangePtr latest_ ABSL_GUARDED_BY(mu_);
};

// ReadTaskOutput: the output file in chunks of at most 1 MiB from `offset`.
class OutputReactor final : public grpc::ServerWriteReactor<v1::OutputChunk> {
 public:
  OutputReactor(VideoTaskServiceImpl& service, const std::string& id, int64_t offset)
      : offset_(offset) {
    absl::StatusOr<Task> task = service.store().Get(id);
    if (!task.ok()) {
      Finish(ToGrpcStatus(task.status()));
      return;
    }
    if (task->state != TaskState::kSucceeded) {
      Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("task ", id, " is ", TaskStateName(task->state),
                                       "; its output can be read once it is SUCCEEDED")));
      return;
    }
    if (task->output_removed_time != absl::InfinitePast()) {
      Finish(grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat("the output of task ", id, " was removed at ",
                       absl::FormatTime(absl::RFC3339_sec, task->output_removed_time,
                                        absl::UTCTimeZone()),
                       " (output retention or DeleteTask); the task record is kept")));
      return;
    }
    total_ = task->output_size_bytes;
    if (offset_ < 0 || offset_ > total_) {
      Finish(grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                          absl::StrCat("offset ", offset_, " is outside the output; allowed: 0..",
                                       total_)));
      return;
    }
    fd_ = ::open(task->output_path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd_ < 0 || ::fstat(fd_, &st) != 0 || st.st_size != total_) {
      Finish(ToGrpcStatus(absl::DataLossError(absl::StrCat(
          "output of task ", id, " is missing or changed on disk: ", task->output_path))));
      return;
    }
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the stream broke"));
      return;
    }
    if (offset_ >= total_) {
      Finish(grpc::Status::OK);
      return;
    }
    WriteNext();
  }

  void OnDone() override {
    if (fd_ >= 0) ::close(fd_);
    delete this;
  }

 private:
  void WriteNext() {
    int64_t n = std::min<int64_t>(kOutputChunkBytes, total_ - offset_);
    std::string* data = chunk_.mutable_data();
    data->resize(static_cast<size_t>(n));
    int64_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_, data->data() + done, static_cast<size_t>(n - done), offset_ + done);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        Finish(grpc::Status(grpc::StatusCode::DATA_LOSS, "the output file was cut short"));
        return;
      }
      done += r;
    }
    chunk_.set_offset(offset_);
    chunk_.set_total_size(total_);
    chunk_.set_mime_type("video/mp4");
    offset_ += n;
    StartWrite(&chunk_);
  }

  int64_t offset_;
  int64_t total_ = 0;
  int fd_ = -1;
  v1::OutputChunk chunk_;
};

}  // namespace

grpc::ServerWriteReactor<v1::Task>* NewWatchReactor(VideoTaskServiceImpl& service,
                                                    grpc::CallbackServerContext* ctx,
                                                    const std::string& id) {
  return new WatchReactor(service, id);
}

grpc::ServerUnaryReactor* NewWaitReactor(VideoTaskServiceImpl& service,
                                         grpc::CallbackServerContext* ctx, const std::string& id,
                                         absl::Duration timeout, v1::Task* reply) {
  const absl::Time now = service.wall_clock().Now();
  absl::Time deadline = now + timeout;
  // Answer a little before the caller's own deadline, so it gets the state.
  absl::Time caller = absl::FromChrono(ctx->deadline());
  if (caller - absl::Milliseconds(200) < deadline) {
    deadline = std::max(now, caller - absl::Milliseconds(200));
  }
  return new WaitReactor(service, id, deadline, reply);
}

grpc::ServerWriteReactor<v1::OutputChunk>* NewOutputReactor(VideoTaskServiceImpl& service,
                                                            const std::string& id,
                                                            int64_t offset) {
  return new OutputReactor(service, id, offset);
}

}  // namespace videotask::api
