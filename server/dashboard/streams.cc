// The dashboard's Server-Sent Event streams: the overview on change, and
// one task's changes through WatchTask.
#include <deque>
#include <memory>
#include <string>
#include <utility>

#include <grpcpp/client_context.h>
#include <grpcpp/support/client_callback.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/dashboard/dashboard.h"
#include "server/dashboard/json_api.h"

namespace videotask::dashboard {
namespace {

void StartEventStream(httplib::Response& res) {
  res.set_header("X-Accel-Buffering", "no");
}

// One WatchTask call on the callback API: answers are queued as JSON for
// the HTTP thread, which takes them with Next(). Owned by a shared_ptr held
// by the HTTP response; its releaser cancels the call and waits for OnDone.
class WatchCall final : public grpc::ClientReadReactor<v1::Task> {
 public:
  WatchCall(v1::VideoTaskService::Stub& stub, const std::string& id, absl::Duration lifetime) {
    ctx_.set_deadline(absl::ToChronoTime(absl::Now() + lifetime));
    request_.set_id(id);
    stub.async()->WatchTask(&ctx_, &request_, this);
    StartRead(&task_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    {
      absl::MutexLock lock(&mu_);
      events_.push_back(SseEvent("task", ToJson(task_)));
    }
    StartRead(&task_);
  }

  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    if (!status.ok() && status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED &&
        status.error_code() != grpc::StatusCode::CANCELLED) {
      events_.push_back(SseEvent("error", ErrorJson(status)));
    }
    done_ = true;
  }

  // Waits up to `timeout` for events; appends them to `out`. False once the
  // call is over and every event was taken.
  bool Next(absl::Duration timeout, std::string& out) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !events_.empty() || done_; };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    while (!events_.empty()) {
      out += events_.front();
      events_.pop_front();
    }
    return !done_;
  }

  void CancelAndWait() ABSL_LOCKS_EXCLUDED(mu_) {
    ctx_.TryCancel();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
  }

 private:
  grpc::ClientContext ctx_;
  v1::WatchTaskRequest request_;
  v1::Task task_;  // the read in flight
  absl::Mutex mu_;
  std::deque<std::string> events_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

bool Dashboard::OpenStream(Response& res) {
  if (open_streams_.fetch_add(1) < options_.max_streams) return true;
  open_streams_.fetch_sub(1);
  res.status = 503;
  res.set_header("Retry-After", "5");
  res.set_content(ErrorJson(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                         "too many open dashboard event streams")),
                  "application/json");
  return false;
}

void Dashboard::Events(const Request&, Response& res) {
  struct State {
    std::string last;
    absl::Time last_write = absl::InfinitePast();
    absl::Time end;
    bool first = true;
  };
  auto state = std::make_shared<State>();
  state->end = absl::Now() + options_.stream_lifetime;
  if (!OpenStream(res)) return;
  StartEventStream(res);
  res.set_chunked_content_provider(
      "text/event-stream", [this, state](size_t, httplib::DataSink& sink) {
        if (!state->first &&
            stopping_.WaitForNotificationWithTimeout(options_.event_check_interval)) {
          return false;
        }
        state->first = false;
        absl::Time now = absl::Now();
        if (now >= state->end) {
          sink.done();
          return true;
        }
        std::string json;
        grpc::Status status = OverviewJson(json);
        std::string out;
        if (!status.ok()) {
          out = SseEvent("error", ErrorJson(status));
        } else if (json != state->last) {
          out = SseEvent("overview", json);
          state->last = std::move(json);
        } else if (now - state->last_write >= options_.keep_alive_interval) {
          out = ": keep-alive\n\n";
        }
        if (out.empty()) return true;
        state->last_write = now;
        return sink.write(out.data(), out.size());
      },
      [this](bool) { CloseStream(); });
}

void Dashboard::WatchTask(const Request& req, Response& res) {
  // Check the id first, so an unknown task is a plain 404, not a stream.
  v1::Task task;
  grpc::Status status = FetchTask(req.matches[1], task);
  if (!status.ok()) {
    res.status = HttpStatusFor(status.error_code());
    res.set_content(ErrorJson(status), "application/json");
    return;
  }
  if (!OpenStream(res)) return;
  auto call = std::make_shared<WatchCall>(*stub_, task.id(), options_.stream_lifetime);
  auto last_write = std::make_shared<absl::Time>(absl::Now());
  StartEventStream(res);
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, call, last_write](size_t, httplib::DataSink& sink) {
        if (stopping_.HasBeenNotified()) return false;
        std::string out;
        bool more = call->Next(options_.event_check_interval, out);
        absl::Time now = absl::Now();
        if (out.empty() && more && now - *last_write >= options_.keep_alive_interval) {
          out = ": keep-alive\n\n";
        }
        if (!out.empty()) {
          *last_write = now;
          if (!sink.write(out.data(), out.size())) return false;
        }
        if (!more) sink.done();
        return true;
      },
      [this, call](bool) {
        call->CancelAndWait();
        CloseStream();
      });
}

}  // namespace videotask::dashboard
