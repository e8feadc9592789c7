// The watch mode: `in_flight` WatchTask streams on tasks listed from the
// server, opened over `channels` connections and held open for `duration`
// (e.g. to measure the server's memory with many watchers).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/loadgen/loadgen.h"
#include "videotask/v1/video_task_service.grpc.pb.h"

namespace videotask::loadgen {
namespace {

using SteadyClock = std::chrono::steady_clock;

class WatchRun;

// One WatchTask stream, reading until it ends or is cancelled.
class Stream final : public grpc::ClientReadReactor<v1::Task> {
 public:
  Stream(WatchRun& run, v1::VideoTaskService::Stub& stub, const LoadOptions& options,
         const std::string& id);
  void Start() {
    StartRead(&task_);
    StartCall();
  }
  void Cancel() { ctx_.TryCancel(); }
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  WatchRun& run_;
  grpc::ClientContext ctx_;
  v1::WatchTaskRequest request_;
  v1::Task task_;
  SteadyClock::time_point started_ = SteadyClock::now();
  bool first_ = true;
};

class WatchRun {
 public:
  explicit WatchRun(const LoadOptions& options) : options_(options) {}

  absl::StatusOr<LoadResult> Run() {
    if (options_.in_flight < 1 || options_.channels < 1) {
      return absl::InvalidArgumentError("in_flight and channels must be at least 1");
    }
    for (int i = 0; i < options_.channels; ++i) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt("videotask.bench.channel", i);
      auto channel = client::MakeChannel(options_.channel, args);
      if (!channel.ok()) return channel.status();
      stubs_.push_back(v1::VideoTaskService::NewStub(*channel));
    }
    absl::StatusOr<std::vector<std::string>> ids = ListIds();
    if (!ids.ok()) return ids.status();
    {
      absl::MutexLock lock(&mu_);
      open_ = static_cast<int>(ids->size());
    }
    const auto t0 = SteadyClock::now();
    std::vector<std::unique_ptr<Stream>> streams;
    for (size_t i = 0; i < ids->size(); ++i) {
      streams.push_back(std::make_unique<Stream>(*this, *stubs_[i % stubs_.size()], options_,
                                                 (*ids)[i]));
      streams.back()->Start();
    }
    // Held for the duration, then cancelled.
    absl::SleepFor(options_.duration);
    LoadResult result;
    {
      absl::MutexLock lock(&mu_);
      result.calls = first_seen_;  // streams that got the task's state, counted while held
    }
    for (auto& s : streams) s->Cancel();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* open) { return *open == 0; }, &open_));
    result.seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    result.items = messages_;
    result.latency_ns = std::move(first_latency_ns_);
    std::sort(result.latency_ns.begin(), result.latency_ns.end());
    result.errors = std::move(errors_);
    return result;
  }

  void OnMessage(bool first, SteadyClock::time_point started) {
    absl::MutexLock lock(&mu_);
    ++messages_;
    if (!first) return;
    ++first_seen_;
    first_latency_ns_.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - started)
            .count());
  }

  void OnDone(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    // Our own cancel ends every stream; anything else is an error.
    if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
      ++errors_[absl::StrCat("code", static_cast<int>(status.error_code()))];
    }
    --open_;
  }

 private:
  absl::StatusOr<std::vector<std::string>> ListIds() {
    std::vector<std::string> ids;
    v1::ListTasksRequest req;
    req.set_page_size(1000);
    while (static_cast<int>(ids.size()) < options_.in_flight) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      client::AddCallCredentials(options_.channel, ctx);
      v1::ListTasksResponse resp;
      grpc::Status st = stubs_[0]->ListTasks(&ctx, req, &resp);
      if (!st.ok()) {
        return absl::UnavailableError(absl::StrCat("listing tasks to watch failed: ",
                                                   st.error_message()));
      }
      for (const v1::Task& t : resp.tasks()) {
        if (static_cast<int>(ids.size()) < options_.in_flight) ids.push_back(t.id());
      }
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    if (static_cast<int>(ids.size()) < options_.in_flight) {
      return absl::FailedPreconditionError(absl::StrCat(
          "watch mode needs ", options_.in_flight, " tasks on the server; it lists ", ids.size()));
    }
    return ids;
  }

  const LoadOptions options_;
  std::vector<std::unique_ptr<v1::VideoTaskService::Stub>> stubs_;
  absl::Mutex mu_;
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t messages_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t first_seen_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int64_t> first_latency_ns_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> errors_ ABSL_GUARDED_BY(mu_);
};

Stream::Stream(WatchRun& run, v1::VideoTaskService::Stub& stub, const LoadOptions& options,
               const std::string& id)
    : run_(run) {
  client::AddCallCredentials(options.channel, ctx_);
  request_.set_id(id);
  stub.async()->WatchTask(&ctx_, &request_, this);
}

void Stream::OnReadDone(bool ok) {
  if (!ok) return;  // OnDone follows
  run_.OnMessage(first_, started_);
  first_ = false;
  StartRead(&task_);
}

void Stream::OnDone(const grpc::Status& status) { run_.OnDone(status); }

}  // namespace

absl::StatusOr<LoadResult> RunWatch(const LoadOptions& options) {
  WatchRun run(options);
  return run.Run();
}

}  // namespace videotask::loadgen
