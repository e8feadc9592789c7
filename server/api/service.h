// The gRPC adapter: validates requests, calls the engine and the store,
// maps results and errors. Unary calls that may block (submit, cancel) run
// on the injected executor, never on gRPC's threads; watch and wait hold no
// thread while they wait.
#ifndef VIDEOTASK_SERVER_API_SERVICE_H_
#define VIDEOTASK_SERVER_API_SERVICE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/executor.h"
#include "common/timer_queue.h"
#include "server/api/arena_messages.h"
#include "server/api/validation.h"
#include "server/auth/auth.h"
#include "server/engine/engine.h"
#include "server/engine/watch_hub.h"
#include "server/store/task_store.h"
#include "videotask/v1/video_task_service.grpc.pb.h"

namespace videotask::api {

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 1000;
inline constexpr int kMaxBatch = 1000;
inline constexpr absl::Duration kMaxWait = absl::Seconds(60);
inline constexpr int64_t kOutputChunkBytes = 1 << 20;

// Something that can be told to end early (open WatchTask streams).
class Drainable {
 public:
  virtual ~Drainable() = default;
  virtual void Drain() = 0;
};

class VideoTaskServiceImpl final : public v1::VideoTaskService::CallbackService {
 public:
  // Everything is borrowed and must outlive the service. `wall_clock` times
  // WaitTask: gRPC deadlines are wall-clock times. `tokens` are the ones
  // the listening port checks (null: no authentication, every task is the
  // anonymous caller's); they name the caller of each submit.
  VideoTaskServiceImpl(engine::Engine& engine, store::TaskStore& store, engine::WatchHub& hub,
                       const Validator& validator, Executor& blocking, const Clock& wall_clock,
                       std::shared_ptr<const auth::TokenChecker> tokens = nullptr);
  ~VideoTaskServiceImpl() override;

  // Refuses new submits with UNAVAILABLE and ends open watch streams, so a
  // graceful shutdown does not wait on them.
  void BeginDrain() ABSL_LOCKS_EXCLUDED(mu_);

  // Registry of open streams (used by the reactors).
  void AddStream(Drainable* stream) ABSL_LOCKS_EXCLUDED(mu_);
  void RemoveStream(Drainable* stream) ABSL_LOCKS_EXCLUDED(mu_);

  engine::Engine& engine() { return engine_; }
  store::TaskStore& store() { return store_; }
  engine::WatchHub& hub() { return hub_; }
  TimerQueue& timers() { return timers_; }
  const Clock& wall_clock() const { return wall_clock_; }
  v1::Task Describe(const Task& task) const;
  void Describe(const Task& task, v1::Task& out) const;  // fills `out` in place
  // The task's webhook deliveries (GetTask only: one more indexed read).
  absl::Status AddDeliveries(v1::Task& task);

 private:
  // Who makes the call: the caller of its bearer token (checked already by
  // the port's token check), or the anonymous caller without tokens.
  std::string CallerOf(const grpc::CallbackServerContext& ctx) const;
  grpc::ServerUnaryReactor* SubmitTask(grpc::CallbackServerContext* ctx,
                                       const v1::SubmitTaskRequest* request,
                                       v1::Task* reply) override;
  grpc::ServerUnaryReactor* BatchSubmitTasks(grpc::CallbackServerContext* ctx,
                                             const v1::BatchSubmitTasksRequest* request,
                                             v1::BatchSubmitTasksResponse* reply) override;
  grpc::ServerUnaryReactor* GetTask(grpc::CallbackServerContext* ctx,
                                    const v1::GetTaskRequest* request, v1::Task* reply) override;
  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext* ctx,
                                      const v1::ListTasksRequest* request,
                                      v1::ListTasksResponse* reply) override;
  grpc::ServerUnaryReactor* CancelTask(grpc::CallbackServerContext* ctx,
                                       const v1::CancelTaskRequest* request,
                                       v1::Task* reply) override;
  grpc::ServerWriteReactor<v1::Task>* WatchTask(grpc::CallbackServerContext* ctx,
                                                const v1::WatchTaskRequest* request) override;
  grpc::ServerUnaryReactor* WaitTask(grpc::CallbackServerContext* ctx,
                                     const v1::WaitTaskRequest* request, v1::Task* reply) override;
  grpc::ServerWriteReactor<v1::OutputChunk>* ReadTaskOutput(
      grpc::CallbackServerContext* ctx, const v1::ReadTaskOutputRequest* request) override;
  grpc::ServerUnaryReactor* DeleteTask(grpc::CallbackServerContext* ctx,
                                       const v1::DeleteTaskRequest* request,
                                       google::protobuf::Empty* reply) override;
  grpc::ServerUnaryReactor* ListBackends(grpc::CallbackServerContext* ctx,
                                         const v1::ListBackendsRequest* request,
                                         v1::ListBackendsResponse* reply) override;
  // operator_rpcs.cc
  grpc::ServerUnaryReactor* RetryTask(grpc::CallbackServerContext* ctx,
                                      const v1::RetryTaskRequest* request,
                                      v1::Task* reply) override;
  grpc::ServerUnaryReactor* PauseBackend(grpc::CallbackServerContext* ctx,
                                         const v1::PauseBackendRequest* request,
                                         v1::BackendInfo* reply) override;
  grpc::ServerUnaryReactor* ResumeBackend(grpc::CallbackServerContext* ctx,
                                          const v1::ResumeBackendRequest* request,
                                          v1::BackendInfo* reply) override;
  // The BackendInfo of an enabled backend, with its pause as stored now.
  absl::StatusOr<v1::BackendInfo> DescribeBackend(absl::string_view name);

  // Stores `tasks` and runs `reply` with the results on the API pool, so the
  // store's writer thread goes on committing while replies are built.
  void SubmitThenReply(std::vector<store::NewTask> tasks,
                       std::function<void(const store::InsertResults&)> reply);
  // Submits that reused a SUCCEEDED task take its output now (blocking).
  void FinishReused(store::InsertResults& results);

  engine::Engine& engine_;
  store::TaskStore& store_;
  engine::WatchHub& hub_;
  const Validator& validator_;
  Executor& blocking_;
  std::atomic<bool> draining_{false};
  const Clock& wall_clock_;
  const std::shared_ptr<const auth::TokenChecker> tokens_;
  TimerQueue timers_{wall_clock_};  // WaitTask timeouts
  // The calls whose replies are built in place on an arena (arena_messages.h).
  ArenaMessageAllocator<v1::ListTasksRequest, v1::ListTasksResponse> list_messages_;
  ArenaMessageAllocator<v1::GetTaskRequest, v1::Task> get_messages_;
  ArenaMessageAllocator<v1::SubmitTaskRequest, v1::Task> submit_messages_;
  ArenaMessageAllocator<v1::BatchSubmitTasksRequest, v1::BatchSubmitTasksResponse> batch_messages_;
  ArenaMessageAllocator<v1::WaitTaskRequest, v1::Task> wait_messages_;

  absl::Mutex mu_;
  absl::flat_hash_set<Drainable*> streams_ ABSL_GUARDED_BY(mu_);
};

// Validates a task id argument: INVALID_ARGUMENT when empty or malformed.
absl::Status CheckTaskId(const std::string& id, absl::string_view field);

}  // namespace videotask::api

#endif  // VIDEOTASK_SERVER_API_SERVICE_H_
