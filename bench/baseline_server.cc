// videotask-baseline: the no-op ceiling for benchmarks. It serves the same
// proto with the same callback API style as videotaskd, parses each request
// and answers a Task of the same shape, but stores nothing and dispatches
// nothing:
//   SubmitTask / BatchSubmitTasks  a QUEUED task echoing the spec (image
//                                  content dropped, as the real server does)
//   GetTask                        a canned QUEUED task with the asked id
//   ListTasks                      page_size canned tasks and a page token
//   WaitTask                       the task, SUCCEEDED at once
// Everything else is UNIMPLEMENTED.
//   videotask-baseline --listen=127.0.0.1:0 --port_file=F
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/ids.h"
#include "videotask/v1/video_task_service.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to serve on (host:port).");
ABSL_FLAG(std::string, port_file, "", "When set, the bound port is written here.");
ABSL_FLAG(int64_t, max_image_bytes, 16 << 20, "Same receive limit as videotaskd's default.");

namespace videotask::bench {
namespace {

// The digest field of a real answer has this length (hex SHA-256).
const std::string kFakeDigest(64, 'a');

void SetNow(google::protobuf::Timestamp* ts) {
  int64_t micros = absl::ToUnixMicros(absl::Now());
  ts->set_seconds(micros / 1'000'000);
  ts->set_nanos(static_cast<int32_t>((micros % 1'000'000) * 1000));
}

class BaselineService final : public v1::VideoTaskService::CallbackService {
 public:
  BaselineService() {
    v1::SubmitTaskRequest req;
    v1::TaskSpec* spec = req.mutable_spec();
    spec->set_backend("mock");
    spec->mutable_image()->set_filename("bench.png");
    spec->set_prompt_text("a slow pan across a quiet harbour at dawn");
    spec->set_ratio("16:9");
    for (int i = 0; i < 1000; ++i) {
      v1::Task* t = page_.add_tasks();
      Answer(req, "", t);
      t->set_id(NewId());
    }
  }

 private:
  std::string NewId() {
    absl::MutexLock lock(&mu_);
    return NewTaskId(absl::Now(), rng_);
  }

  // What the real server answers for an accepted submit, field for field.
  void Answer(const v1::SubmitTaskRequest& req, const std::string& id, v1::Task* task) {
    task->set_id(id);
    task->set_request_id(req.request_id());
    const v1::TaskSpec& in = req.spec();
    v1::TaskSpec* spec = task->mutable_spec();
    spec->set_backend(in.backend().empty() ? "mock" : in.backend());
    spec->set_model(in.model().empty() ? "gen4_turbo" : in.model());
    spec->mutable_image()->set_filename(in.image().filename());
    spec->mutable_image()->set_mime_type("image/png");
    spec->set_prompt_text(in.prompt_text());
    spec->set_ratio("1280:720");
    spec->set_duration_seconds(in.duration_seconds() == 0 ? 4 : in.duration_seconds());
    *spec->mutable_labels() = in.labels();
    spec->set_priority(in.priority());
    task->set_state(v1::QUEUED);
    task->set_provider_status("waiting to be dispatched");
    task->set_target_filename_stub("bench_video");
    task->set_image_sha256(kFakeDigest);
    SetNow(task->mutable_create_time());
    *task->mutable_update_time() = task->create_time();
  }

  grpc::ServerUnaryReactor* SubmitTask(grpc::CallbackServerContext* ctx,
                                       const v1::SubmitTaskRequest* request,
                                       v1::Task* reply) override {
    Answer(*request, NewId(), reply);
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* BatchSubmitTasks(grpc::CallbackServerContext* ctx,
                                             const v1::BatchSubmitTasksRequest* request,
                                             v1::BatchSubmitTasksResponse* reply) override {
    for (const v1::SubmitTaskRequest& item : request->requests()) {
      Answer(item, NewId(), reply->add_results()->mutable_task());
    }
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* GetTask(grpc::CallbackServerContext* ctx,
                                    const v1::GetTaskRequest* request, v1::Task* reply) override {
    *reply = page_.tasks(0);
    reply->set_id(request->id());
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext* ctx,
                                      const v1::ListTasksRequest* request,
                                      v1::ListTasksResponse* reply) override {
    int n = request->page_size() <= 0 ? 50 : std::min(request->page_size(), 1000);
    for (int i = 0; i < n; ++i) *reply->add_tasks() = page_.tasks(i);
    reply->set_next_page_token("Y2FubmVkLXBhZ2UtdG9rZW4tb2YtdGhlLWJhc2VsaW5lLXNlcnZlcg");
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* WaitTask(grpc::CallbackServerContext* ctx,
                                     const v1::WaitTaskRequest* request, v1::Task* reply) override {
    *reply = page_.tasks(0);
    reply->set_id(request->id());
    reply->set_state(v1::SUCCEEDED);
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  absl::Mutex mu_;
  absl::BitGen rng_ ABSL_GUARDED_BY(mu_);
  v1::ListTasksResponse page_;  // filled in the constructor, read-only after
};

int Run() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  BaselineService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
  int64_t max_message = std::min<int64_t>(
      INT32_MAX, std::max<int64_t>(int64_t{64} << 20, absl::GetFlag(FLAGS_max_image_bytes) * 2 +
                                                          (1 << 20)));
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_message));
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "videotask-baseline: cannot listen on %s\n",
                 absl::GetFlag(FLAGS_listen).c_str());
    return 1;
  }
  if (!absl::GetFlag(FLAGS_port_file).empty()) {
    absl::Status written =
        WriteFileAtomically(absl::GetFlag(FLAGS_port_file), absl::StrCat(port, "\n"));
    if (!written.ok()) {
      std::fprintf(stderr, "videotask-baseline: %s\n", written.ToString().c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "videotask-baseline serving on port %d\n", port);
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  });
  server->Wait();
  waiter.join();
  return 0;
}

}  // namespace
}  // namespace videotask::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return videotask::bench::Run();
}
