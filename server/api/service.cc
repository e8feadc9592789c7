#include "server/api/service.h"

#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/status_macros.h"
#include "common/text.h"
#include "server/api/mapping.h"
#include "server/api/page_token.h"
#include "server/api/reactors.h"
#include "server/api/validation.h"

namespace videotask::api {
namespace {

grpc::Status Draining() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "the server is shutting down; retry shortly (or on another replica)");
}

// Requests whose validation and queueing take no file I/O and little CPU
// (inline images up to this size, https URIs) are accepted on gRPC's own
// thread: no hop to the blocking pool. Server paths (a file read) and
// large images (hashed, and written to a blob file before the insert is
// queued) go to the pool.
constexpr size_t kAcceptInlineBytes = 64 * 1024;

size_t InlineCost(const v1::SubmitTaskRequest& request) {
  const v1::ImageInput& image = request.spec().image();
  switch (image.source_case()) {
    case v1::ImageInput::kContent: return image.content().size();
    case v1::ImageInput::kUri: return image.uri().size();
    case v1::ImageInput::kServerPath: return kAcceptInlineBytes + 1;
    case v1::ImageInput::SOURCE_NOT_SET: return 0;
  }
  return kAcceptInlineBytes + 1;
}

// Runs `accept` here when the request is cheap to accept, else on `pool`.
void AcceptOn(Executor& pool, size_t cost, size_t limit, std::function<void()> accept) {
  if (cost <= limit) {
    accept();
  } else {
    pool.Schedule(std::move(accept));
  }
}

// A stream refused before it starts.
template <typename Message>
class RefusedStream final : public grpc::ServerWriteReactor<Message> {
 public:
  explicit RefusedStream(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

absl::Status CheckTaskId(const std::string& id, absl::string_view field) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  if (!IsWellFormedTaskId(id)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " ", QuotedForError(id), " is not a task id (26 characters of Crockford base32)"));
  }
  return absl::OkStatus();
}

VideoTaskServiceImpl::VideoTaskServiceImpl(engine::Engine& engine, store::TaskStore& store,
                                           engine::WatchHub& hub, const Validator& validator,
                                           Executor& blocking, const Clock& wall_clock,
                                           std::shared_ptr<const auth::TokenChecker> tokens)
    : engine_(engine),
      store_(store),
      hub_(hub),
      validator_(validator),
      blocking_(blocking),
      wall_clock_(wall_clock),
      tokens_(std::move(tokens)) {
  SetMessageAllocatorFor_ListTasks(&list_messages_);
  SetMessageAllocatorFor_GetTask(&get_messages_);
  SetMessageAllocatorFor_SubmitTask(&submit_messages_);
  SetMessageAllocatorFor_BatchSubmitTasks(&batch_messages_);
  SetMessageAllocatorFor_WaitTask(&wait_messages_);
}

VideoTaskServiceImpl::~VideoTaskServiceImpl() = default;

std::string VideoTaskServiceImpl::CallerOf(const grpc::CallbackServerContext& ctx) const {
  if (tokens_ == nullptr) return kAnonymousCaller;
  // The port's token check let the call in with exactly one valid header.
  auto [first, last] = ctx.client_metadata().equal_range("authorization");
  if (first != last && std::next(first) == last) {
    const std::string* caller = tokens_->Authenticate(
        absl::string_view(first->second.data(), first->second.size()));
    if (caller != nullptr) return *caller;
  }
  return kAnonymousCaller;
}

v1::Task VideoTaskServiceImpl::Describe(const Task& task) const {
  return TaskToProto(task, engine_.DescribeWait(task));
}

void VideoTaskServiceImpl::Describe(const Task& task, v1::Task& out) const {
  TaskToProto(task, engine_.DescribeWait(task), out);
}

void VideoTaskServiceImpl::BeginDrain() {
  draining_ = true;
  // Reactors unregister in OnDone, which gRPC never runs inside Finish, so
  // holding the lock here keeps every listed stream alive.
  absl::MutexLock lock(&mu_);
  for (Drainable* s : streams_) s->Drain();
}

void VideoTaskServiceImpl::AddStream(Drainable* stream) {
  absl::MutexLock lock(&mu_);
  streams_.insert(stream);
}

void VideoTaskServiceImpl::RemoveStream(Drainable* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
}

grpc::ServerUnaryReactor* VideoTaskServiceImpl::SubmitTask(grpc::CallbackServerContext* ctx,
                                                           const v1::SubmitTaskRequest* request,
                                                           v1::Task* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (draining_) {
    reactor->Finish(Draining());
    return reactor;
  }
  AcceptOn(blocking_, InlineCost(*request), kAcceptInlineBytes,
           [this, request, reply, reactor, caller = CallerOf(*ctx)] {
    absl::StatusOr<store::NewTask> task = validator_.Validate(*request, "");
    if (!task.ok()) {
      reactor->Finish(ToGrpcStatus(task.status()));
      return;
    }
    task->task.caller = caller;
    if (request->validate_only()) {
      TaskToProto(task->task, "", *reply);
      reactor->Finish(grpc::Status::OK);
      return;
    }
    std::vector<store::NewTask> tasks;
    tasks.push_back(*std::move(task));
    SubmitThenReply(std::move(tasks), [this, reply, reactor](const store::InsertResults& results) {
      if (!results[0].ok()) {
        reactor->Finish(ToGrpcStatus(results[0].status()));
        return;
      }
      Describe(results[0]->task, *reply);
      reactor->Finish(grpc::Status::OK);
    });
  });
  return reactor;
}

grpc::ServerUnaryReactor* VideoTaskServiceImpl::BatchSubmitTasks(
    grpc::CallbackServerContext* ctx, const v1::BatchSubmitTasksRequest* request,
    v1::BatchSubmitTasksResponse* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (draining_) {
    reactor->Finish(Draining());
    return reactor;
  }
  if (request->requests_size() > kMaxBatch) {
    reactor->Finish(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("requests has ", request->requests_size(), " items; at most ", kMaxBatch)));
    return reactor;
  }
  size_t cost = 0;
  for (const v1::SubmitTaskRequest& item : request->requests()) cost += InlineCost(item);
  // A batch may hold many small images: up to 16 inline limits' worth.
  AcceptOn(blocking_, cost, 16 * kAcceptInlineBytes,
           [this, request, reply, reactor, caller = CallerOf(*ctx)] {
    std::vector<store::NewTask> tasks;
    std::vector<int> index;  // tasks[i] answers requests[index[i]]
    for (int i = 0; i < request->requests_size(); ++i) {
      const v1::SubmitTaskRequest& item = request->requests(i);
      v1::BatchSubmitResult* result = reply->add_results();
      absl::StatusOr<store::NewTask> task =
          validator_.Validate(item, absl::StrCat("requests[", i, "]."));
      if (task.ok()) task->task.caller = caller;
      if (!task.ok()) {
        *result->mutable_error() = StatusToError(task.status());
      } else if (item.validate_only()) {
        TaskToProto(task->task, "", *result->mutable_task());
      } else {
        tasks.push_back(*std::move(task));
        index.push_back(i);
      }
    }
    if (tasks.empty()) {
      reactor->Finish(grpc::Status::OK);
      return;
    }
    SubmitThenReply(std::move(tasks), [this, reply, reactor, index = std::move(index)](
                                          const store::InsertResults& results) {
      for (size_t i = 0; i < results.size(); ++i) {
        v1::BatchSubmitResult* result = reply->mutable_results(index[i]);
        if (results[i].ok()) {
          Describe(results[i]->task, *result->mutable_task());
        } else {
          *result->mutable_error() = StatusToError(results[i].status());
        }
      }
      reactor->Finish(grpc::Status::OK);
    });
  });
  return reactor;
}

void VideoTaskServiceImpl::SubmitThenReply(
    std::vector<store::NewTask> tasks, std::function<void(const store::InsertResults&)> reply) {
  engine_.SubmitAsync(std::move(tasks), [this, reply = std::move(reply)](
                                            store::InsertResults results) {
    blocking_.Schedule([this, reply, results = std::move(results)]() mutable {
      FinishReused(results);
      reply(results);
    });
  });
}

void VideoTaskServiceImpl::FinishReused(store::InsertResults& results) {
  for (absl::StatusOr<store::InsertResult>& r : results) {
    if (!r.ok() || r->reused == nullptr) continue;
    // Identical to a SUCCEEDED task: answered SUCCEEDED with its own file.
    // Left QUEUED on an error; the engine's recovery scans finish it.
    absl::StatusOr<Task> done = engine_.FinishReuse(r->task, r->reused.get());
    if (done.ok()) r->task = *std::move(done);
  }
}

grpc::ServerUnaryReactor* VideoTaskServiceImpl::GetTask(grpc::CallbackServerContext* ctx,
                                                        const v1::GetTaskRequest* request,
                                                        v1::Task* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Status status = CheckTaskId(request->id(), "id");
  if (status.ok()) {
    absl::StatusOr<Task> task = store_.Get(request->id());  // a short indexed read
    status = task.status();
    if (task.ok()) Describe(*task, *reply);
    if (task.ok()) status = AddDeliveries(*reply);
  }
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

absl::Status VideoTaskServiceImpl::AddDeliveries(v1::Task& task) {
  VT_ASSIGN_OR_RETURN(std::vector<store::OutboxMessage> deliveries,
                      store_.ListDeliveries(task.id()));
  for (const store::OutboxMessage& m : deliveries) *task.add_deliveries() = DeliveryToProto(m);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* VideoTaskServiceImpl::ListTasks(grpc::CallbackServerContext* ctx,
                                                          const v1::ListTasksRequest* request,
                                                          v1::ListTasksResponse* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto fail = [reactor](const std::string& message) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message));
    return reactor;
  };
  if (request->page_size() < 0) {
    return fail(absl::StrCat("page_size is ", request->page_size(), "; allowed: 0 (= ",
                             kDefaultPageSize, ") .. ", kMaxPageSize,
                             " (larger values are lowered)"));
  }
  store::ListQuery query;
  query.page_size = request->page_size() == 0 ? kDefaultPageSize
                                              : std::min(request->page_size(), kMaxPageSize);
  for (int i = 0; i < request->states_size(); ++i) {
    std::optional<TaskState> state = StateFromProto(request->states(i));
    if (!state.has_value()) {
      return fail(absl::StrCat("states[", i, "] is ", request->states(i),
                               "; allowed: QUEUED, SUBMITTING, RUNNING, DOWNLOADING, SUCCEEDED, "
                               "FAILED, CANCELLED"));
    }
    query.states.push_back(*state);
  }
  query.backend = request->backend();
  if (!request->caller().empty() && !IsCallerName(request->caller())) {
    return fail(absl::StrCat("caller ", QuotedForError(request->caller()), " must be ",
                             kCallerNameRule, " (as in Task.caller)"));
  }
  query.caller = request->caller();
  for (const auto& [key, value] : request->labels()) {
    if (!IsLabelKey(key)) {
      return fail(absl::StrCat("labels key ", QuotedForError(key), " must be ", LabelKeyRule(),
                               " (as in spec.labels)"));
    }
    query.labels[key] = value;
  }
  std::string digest = FilterDigest(query);
  if (!request->page_token().empty()) {
    absl::StatusOr<store::ListCursor> cursor = DecodePageToken(request->page_token(), digest);
    if (!cursor.ok()) return fail(std::string(cursor.status().message()));
    query.after = *cursor;
  }
  absl::StatusOr<store::ListPage> page = store_.List(query);
  if (!page.ok()) {
    reactor->Finish(ToGrpcStatus(page.status()));
    return reactor;
  }
  for (const Task& task : page->tasks) Describe(task, *reply->add_tasks());
  if (page->has_more && !page->tasks.empty()) {
    const Task& last = page->tasks.back();
    reply->set_next_page_token(EncodePageToken({last.create_time, last.id}, digest));
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* VideoTaskServiceImpl::CancelTask(grpc::CallbackServerContext* ctx,
                                                           const v1::CancelTaskRequest* request,
                                                           v1::Task* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Status id_ok = CheckTaskId(request->id(), "id");
  if (!id_ok.ok()) {
    reactor->Finish(ToGrpcStatus(id_ok));
    return reactor;
  }
  blocking_.Schedule([this, request, reply, reactor] {
    absl::StatusOr<Task> task = engine_.Cancel(request->id());
    if (task.ok()) Describe(*task, *reply);
    reactor->Finish(ToGrpcStatus(task.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* VideoTaskServiceImpl::DeleteTask(grpc::CallbackServerContext* ctx,
                                                           const v1::DeleteTaskRequest* request,
                                                           google::protobuf::Empty* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Status id_ok = CheckTaskId(request->id(), "id");
  if (!id_ok.ok()) {
    reactor->Finish(ToGrpcStatus(id_ok));
    return reactor;
  }
  blocking_.Schedule([this, request, reactor] {
    absl::StatusOr<Task> deleted = engine_.Delete(request->id(), request->delete_output());
    reactor->Finish(ToGrpcStatus(deleted.status()));
  });
  return reactor;
}

grpc::ServerWriteReactor<v1::Task>* VideoTaskServiceImpl::WatchTask(
    grpc::CallbackServerContext* ctx, const v1::WatchTaskRequest* request) {
  absl::Status id_ok = CheckTaskId(request->id(), "id");
  if (!id_ok.ok() || draining_) {
    return new RefusedStream<v1::Task>(id_ok.ok() ? Draining() : ToGrpcStatus(id_ok));
  }
  return NewWatchReactor(*this, ctx, request->id());
}

grpc::ServerUnaryReactor* VideoTaskServiceImpl::WaitTask(grpc::CallbackServerContext* ctx,
                                                         const v1::WaitTaskRequest* request,
                                                         v1::Task* reply) {
  absl::Status id_ok = CheckTaskId(request->id(), "id");
  absl::Duration timeout = absl::Seconds(request->timeout().seconds()) +
                           absl::Nanoseconds(request->timeout().nanos());
  if (id_ok.ok() && timeout < absl::ZeroDuration()) {
    id_ok = absl::InvalidArgumentError("timeout is negative; allowed: 0 (= 60s) .. 60s");
  }
  if (!id_ok.ok()) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(ToGrpcStatus(id_ok));
    return reactor;
  }
  if (timeout == absl::ZeroDuration() || timeout > kMaxWait) timeout = kMaxWait;
  return NewWaitReactor(*this, ctx, request->id(), timeout, reply);
}

grpc::ServerWriteReactor<v1::OutputChunk>* VideoTaskServiceImpl::ReadTaskOutput(
    grpc::CallbackServerContext* ctx, const v1::ReadTaskOutputRequest* request) {
  absl::Status id_ok = CheckTaskId(request->id(), "id");
  if (!id_ok.ok()) {
    return new RefusedStream<v1::OutputChunk>(ToGrpcStatus(id_ok));
  }
  return NewOutputReactor(*this, request->id(), request->offset());
}

}  // namespace videotask::api
