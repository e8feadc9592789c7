// The operator's calls: ListBackends (with pauses), PauseBackend,
// ResumeBackend and RetryTask. Each may block on the store, so it runs on
// the blocking executor, never on gRPC's threads.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/text.h"
#include "server/api/mapping.h"
#include "server/api/service.h"
#include "server/domain/daily_budget.h"

namespace videotask::api {
namespace {

constexpr size_t kMaxPauseReasonBytes = 1024;
constexpr size_t kMaxProviderTaskIdBytes = 256;

absl::Status CheckAdoptId(const std::string& id) {
  bool printable = !id.empty() && id.size() <= kMaxProviderTaskIdBytes;
  for (char c : id) printable = printable && c > ' ' && c <= '~';
  if (printable) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("adopt_provider_task_id ", QuotedForError(id),
                   " must be 1..256 printable ASCII characters without spaces"));
}

absl::Status CheckReason(const std::string& reason) {
  bool ok = reason.size() <= kMaxPauseReasonBytes;
  for (char c : reason) ok = ok && static_cast<unsigned char>(c) >= ' ' && c != '\x7f';
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "reason must be at most 1024 bytes without control characters");
}

absl::Status CheckBackendName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("name (a backend name) is required");
  return absl::OkStatus();
}

// Today's spend and what is left of each budget, from the store's
// daily_spend (every server sharing it).
absl::Status AddSpend(const engine::Engine& engine, store::TaskStore& store,
                      const std::string& caller, v1::ListBackendsResponse& reply) {
  const absl::Time now = engine.Now();  // the engine's day is the claims' day
  absl::StatusOr<std::vector<store::DailySpend>> spent = store.ListDailySpend(now);
  if (!spent.ok()) return spent.status();
  const store::DailyBudgets& budgets = engine.daily_budgets();
  for (v1::BackendInfo& info : *reply.mutable_backends()) {
    auto limit = budgets.backend_micros.find(info.name());
    int64_t micros = 0;
    for (const store::DailySpend& s : *spent) {
      if (s.kind == store::DailySpend::Kind::kBackend && s.name == info.name()) {
        micros = s.spent_micros;
      }
    }
    SetSpend(limit == budgets.backend_micros.end() ? 0 : limit->second, micros, now, info);
  }
  const int64_t per_caller = budgets.per_caller_micros;
  bool self_listed = false;
  for (const store::DailySpend& s : *spent) {
    if (s.kind != store::DailySpend::Kind::kCaller) continue;
    v1::CallerSpend* c = reply.add_caller_spend();
    c->set_caller(s.name);
    c->set_spent_today_usd(MicrosToUsd(s.spent_micros));
    if (per_caller > 0) {
      c->set_remaining_today_usd(MicrosToUsd(std::max<int64_t>(per_caller - s.spent_micros, 0)));
    }
    self_listed = self_listed || s.name == caller;
  }
  if (per_caller > 0 && !self_listed) {
    v1::CallerSpend* c = reply.add_caller_spend();
    c->set_caller(caller);
    c->set_remaining_today_usd(MicrosToUsd(per_caller));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::BackendInfo> VideoTaskServiceImpl::DescribeBackend(absl::string_view name) {
  const engine::EngineBackend* b = engine_.FindBackend(name);
  if (b == nullptr) return absl::NotFoundError(absl::StrCat("backend ", name, " is not enabled"));
  v1::BackendInfo info = BackendToProto(b->config, b->backend->capabilities());
  absl::StatusOr<std::vector<store::BackendPause>> pauses = engine_.ListPauses();
  if (!pauses.ok()) return pauses.status();
  for (const store::BackendPause& pause : *pauses) {
    if (pause.backend == name) SetPause(pause, info);
  }
  return info;
}

grpc::ServerUnaryReactor* VideoTaskServiceImpl::ListBackends(grpc::CallbackServerContext* ctx,
                                                             const v1::ListBackendsRequest* request,
                                                             v1::ListBackendsResponse* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  blocking_.Schedule([this, reply, reactor, caller = CallerOf(*ctx)] {
    absl::StatusOr<std::vector<store::BackendPause>> pauses = engine_.ListPauses();
    if (!pauses.ok()) {
      reactor->Finish(ToGrpcStatus(pauses.status()));
      return;
    }
    for (const engine::EngineBackend& b : engine_.backends()) {
      v1::BackendInfo* info = reply->add_backends();
      *info = BackendToProto(b.config, b.backend->capabilities());
      for (const store::BackendPause& pause : *pauses) {
        if (pause.backend == b.config.name) SetPause(pause, *info);
      }
    }
    reply->set_default_backend(validator_.default_backend());
    absl::Status spend = AddSpend(engine_, store_, caller, *reply);
    reactor->Finish(ToGrpcStatus(spend));
  });
  return reactor;
}

grpc::ServerUnaryReactor* VideoTaskServiceImpl::PauseBackend(
    grpc::CallbackServerContext* ctx, const v1::PauseBackendRequest* request,
    v1::BackendInfo* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Status ok = CheckBackendName(request->name());
  if (ok.ok()) ok = CheckReason(request->reason());
  if (!ok.ok()) {
    reactor->Finish(ToGrpcStatus(ok));
    return reactor;
  }
  blocking_.Schedule([this, request, reply, reactor, caller = CallerOf(*ctx)] {
    absl::StatusOr<store::BackendPause> paused =
        engine_.Pause(request->name(), request->reason(), caller);
    absl::StatusOr<v1::BackendInfo> info =
        paused.ok() ? DescribeBackend(request->name()) : paused.status();
    if (info.ok()) *reply = *std::move(info);
    reactor->Finish(ToGrpcStatus(info.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* VideoTaskServiceImpl::ResumeBackend(
    grpc::CallbackServerContext* ctx, const v1::ResumeBackendRequest* request,
    v1::BackendInfo* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Status ok = CheckBackendName(request->name());
  if (!ok.ok()) {
    reactor->Finish(ToGrpcStatus(ok));
    return reactor;
  }
  blocking_.Schedule([this, request, reply, reactor] {
    absl::Status resumed = engine_.Resume(request->name());
    absl::StatusOr<v1::BackendInfo> info =
        resumed.ok() ? DescribeBackend(request->name()) : resumed;
    if (info.ok()) *reply = *std::move(info);
    reactor->Finish(ToGrpcStatus(info.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* VideoTaskServiceImpl::RetryTask(grpc::CallbackServerContext* ctx,
                                                          const v1::RetryTaskRequest* request,
                                                          v1::Task* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Status ok = CheckTaskId(request->id(), "id");
  if (ok.ok() && !request->adopt_provider_task_id().empty()) {
    ok = CheckAdoptId(request->adopt_provider_task_id());
  }
  if (!ok.ok()) {
    reactor->Finish(ToGrpcStatus(ok));
    return reactor;
  }
  blocking_.Schedule([this, request, reply, reactor] {
    engine::RetryRequest retry;
    retry.confirm_possible_duplicate = request->confirm_possible_duplicate();
    retry.adopt_provider_task_id = request->adopt_provider_task_id();
    absl::StatusOr<Task> task = engine_.Retry(request->id(), std::move(retry));
    if (task.ok()) Describe(*task, *reply);
    reactor->Finish(ToGrpcStatus(task.status()));
  });
  return reactor;
}

}  // namespace videotask::api
