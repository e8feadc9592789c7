#include "server/store/table_store.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status_macros.h"
#include "server/domain/daily_budget.h"
#include "server/store/state_counts.h"

namespace videotask::store::internal {

template <typename T, typename Read>
absl::StatusOr<T> TableStore::OnReadSession(Read read) {
  absl::StatusOr<T> result = absl::InternalError("read not run");
  absl::Status status = WithReadSession([&](SqlSession& session) {
    result = read(session);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return result;
}

absl::StatusOr<Task> TableStore::Get(absl::string_view id) {
  return OnReadSession<Task>([&](SqlSession& s) { return table_.Get(s, id); });
}

absl::StatusOr<ListPage> TableStore::List(const ListQuery& query) {
  return OnReadSession<ListPage>([&](SqlSession& s) { return table_.List(s, query); });
}

absl::StatusOr<std::vector<std::string>> TableStore::ExplainList(const ListQuery& query) {
  return OnReadSession<std::vector<std::string>>(
      [&](SqlSession& s) { return table_.ExplainList(s, query); });
}

absl::StatusOr<std::vector<Task>> TableStore::ListRecoverable(absl::string_view owner,
                                                              absl::Time now) {
  return OnReadSession<std::vector<Task>>(
      [&](SqlSession& s) { return table_.ListRecoverable(s, owner, now); });
}

absl::StatusOr<absl::Time> TableStore::NextQueuedTime(absl::string_view backend) {
  return OnReadSession<absl::Time>(
      [&](SqlSession& s) { return table_.NextQueuedTime(s, backend); });
}

absl::StatusOr<int64_t> TableStore::CountQueued() {
  return OnReadSession<int64_t>([&](SqlSession& s) { return table_.CountQueued(s); });
}

absl::StatusOr<BackendPause> TableStore::PauseBackend(const BackendPause& pause) {
  absl::StatusOr<BackendPause> result = absl::InternalError("pause not run");
  VT_RETURN_IF_ERROR(WithWriteSession([&](SqlSession& s) {
    result = pauses_.Pause(s, pause);
    return result.status();
  }));
  return result;
}

absl::StatusOr<bool> TableStore::ResumeBackend(absl::string_view backend) {
  absl::StatusOr<bool> result = absl::InternalError("resume not run");
  std::string name(backend);
  VT_RETURN_IF_ERROR(WithWriteSession([&](SqlSession& s) {
    result = pauses_.Resume(s, name);
    return result.status();
  }));
  return result;
}

absl::StatusOr<std::vector<BackendPause>> TableStore::ListBackendPauses() {
  return OnReadSession<std::vector<BackendPause>>(
      [&](SqlSession& s) { return pauses_.List(s); });
}

absl::StatusOr<std::vector<Task>> TableStore::ListKeptOutputs(absl::Time ended_before,
                                                              int limit) {
  return OnReadSession<std::vector<Task>>(
      [&](SqlSession& s) { return table_.ListKeptOutputs(s, ended_before, limit); });
}

absl::StatusOr<int64_t> TableStore::CountQueuedOf(absl::string_view caller) {
  return OnReadSession<int64_t>([&](SqlSession& s) { return table_.CountQueuedOf(s, caller); });
}

absl::StatusOr<std::vector<Task>> TableStore::ListFollowers(absl::string_view of, int limit) {
  return OnReadSession<std::vector<Task>>(
      [&](SqlSession& s) { return table_.ListFollowers(s, of, limit); });
}

absl::StatusOr<std::vector<StateCount>> TableStore::CountByState() {
  return OnReadSession<std::vector<StateCount>>(
      [&](SqlSession& s) { return ReadStateCounts(s, dialect_); });
}

absl::StatusOr<std::vector<OldestQueued>> TableStore::OldestQueuedTimes() {
  return OnReadSession<std::vector<OldestQueued>>(
      [&](SqlSession& s) { return ReadOldestQueued(s, dialect_); });
}

absl::StatusOr<std::vector<OutboxMessage>> TableStore::ClaimOutbox(absl::Time now, int limit,
                                                                   absl::string_view owner,
                                                                   absl::Time lease_expiry) {
  absl::StatusOr<std::vector<OutboxMessage>> result = absl::InternalError("claim not run");
  std::string who(owner);
  VT_RETURN_IF_ERROR(WithWriteSession([&](SqlSession& s) {
    result = table_.outbox().Claim(s, now, limit, who, lease_expiry);
    return result.status();
  }));
  return result;
}

absl::Status TableStore::FinishDelivery(const DeliveryResult& result) {
  absl::Status answer = absl::InternalError("finish not run");
  VT_RETURN_IF_ERROR(WithWriteSession([&](SqlSession& s) {
    answer = table_.outbox().Finish(s, result);
    // A lost lease is an answer; nothing was written.
    if (absl::IsAborted(answer) || absl::IsNotFound(answer)) return absl::OkStatus();
    return answer;
  }));
  return answer;
}

absl::StatusOr<std::vector<OutboxMessage>> TableStore::ListDeliveries(absl::string_view task_id) {
  return OnReadSession<std::vector<OutboxMessage>>(
      [&](SqlSession& s) { return table_.outbox().ListForTask(s, task_id); });
}

void TableStore::SetDailyBudgets(DailyBudgets budgets) {
  auto shared = std::make_shared<const DailyBudgets>(std::move(budgets));
  absl::MutexLock lock(&budgets_mu_);
  budgets_ = std::move(shared);
}

std::shared_ptr<const DailyBudgets> TableStore::Budgets() const {
  absl::MutexLock lock(&budgets_mu_);
  return budgets_;
}

absl::StatusOr<std::vector<DailySpend>> TableStore::ListDailySpend(absl::Time day) {
  return OnReadSession<std::vector<DailySpend>>(
      [&](SqlSession& s) { return table_.spend().List(s, UtcDay(day)); });
}

absl::Status TableStore::RefundDailySpend(const Task& task, absl::Time claimed) {
  if (task.estimated_cost_micros <= 0) return absl::OkStatus();
  return WithWriteSession(
      [&](SqlSession& s) { return table_.spend().Refund(s, task, UtcDay(claimed)); });
}

}  // namespace videotask::store::internal
