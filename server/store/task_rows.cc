#include "server/store/task_rows.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/text.h"
#include "server/store/reuse_key.h"
#include "server/store/state_counts.h"
#include "server/store/store_util.h"

namespace videotask::store::internal {
namespace {

std::vector<int> SortedStates(const std::vector<TaskState>& states) {
  std::vector<int> out;
  for (TaskState state : states) out.push_back(static_cast<int>(state));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Parameters in ListSql's order: 1 limit, then the cursor, backend, label
// pairs and states that the query uses.
void BindList(RowWriter& out, const Dialect& dialect, const ListQuery& query, int page_size,
              const std::vector<int>& states) {
  out.Int(page_size + 1);
  if (query.after.has_value()) {
    out.Int(CompareMicros(query.after->create_time)).Text(query.after->id);
  }
  if (!query.backend.empty()) out.Text(query.backend);
  if (!query.caller.empty()) out.Text(query.caller);
  for (const auto& [key, value] : query.labels) out.Text(key).Text(value);
  if (states.empty()) return;
  // Only a label walk filters states by array (ListByLabelSql).
  if (dialect.has_arrays() && !query.labels.empty()) {
    out.Text(absl::StrCat("{", absl::StrJoin(states, ","), "}"));
    return;
  }
  for (int state : states) out.Int(state);
}

}  // namespace

absl::StatusOr<std::string> ProbeStub(
    const std::string& base, int64_t& next,
    absl::FunctionRef<absl::StatusOr<bool>(const std::string&)> is_free) {
  int64_t n = next;
  std::string candidate;
  while (true) {
    candidate = n < 2 ? base : absl::StrCat(base, "_", n);
    VT_ASSIGN_OR_RETURN(bool free, is_free(candidate));
    if (free) break;
    n = n < 2 ? 2 : n + 1;
  }
  next = n < 2 ? 2 : n + 1;
  return candidate;
}

std::vector<std::string> PickFairly(std::vector<CallerQueue> queues, int limit) {
  std::vector<std::string> picked;
  std::vector<size_t> pos(queues.size(), 0);
  while (static_cast<int>(picked.size()) < limit) {
    const CallerQueue* best = nullptr;
    size_t best_index = 0;
    for (size_t i = 0; i < queues.size(); ++i) {
      const CallerQueue& q = queues[i];
      if (pos[i] >= q.next.size()) continue;
      const ClaimCandidate& c = q.next[pos[i]];
      if (best != nullptr) {
        const ClaimCandidate& b = best->next[pos[best_index]];
        if (c.priority != b.priority) {
          if (c.priority < b.priority) continue;
        } else if (q.active != best->active) {
          if (q.active > best->active) continue;
        } else if (std::tie(c.create_time, c.id) >= std::tie(b.create_time, b.id)) {
          continue;
        }
      }
      best = &q;
      best_index = i;
    }
    if (best == nullptr) break;
    picked.push_back(best->next[pos[best_index]++].id);
    ++queues[best_index].active;
  }
  return picked;
}

absl::StatusOr<std::vector<Task>> TaskTable::Select(SqlSession& session, const std::string& sql,
                                                    SqlSession::Bind bind) const {
  std::vector<Task> tasks;
  VT_RETURN_IF_ERROR(session.Query(sql, bind, [&](const RowReader& row) -> absl::Status {
    VT_ASSIGN_OR_RETURN(Task task, ReadTaskRow(row));
    tasks.push_back(std::move(task));
    return absl::OkStatus();
  }));
  return tasks;
}

absl::StatusOr<std::vector<Task>> TaskTable::UpdateRow(SqlSession& session, const std::string& sql,
                                                       absl::string_view id,
                                                       SqlSession::Bind bind) const {
  if (sql_.read_back.empty()) return Select(session, sql, bind);
  VT_RETURN_IF_ERROR(session.Exec(sql, bind));
  return Select(session, sql_.read_back, [&](RowWriter& w) { w.Text(id); });
}

absl::StatusOr<Task> TaskTable::Get(SqlSession& session, absl::string_view id) const {
  VT_ASSIGN_OR_RETURN(std::vector<Task> tasks,
                      Select(session, sql_.select_by_id, [&](RowWriter& w) { w.Text(id); }));
  if (tasks.empty()) return absl::NotFoundError(absl::StrCat("task ", id, " not found"));
  return std::move(tasks.front());
}

std::string TaskTable::ListSql(const ListQuery& query, size_t states) const {
  if (!query.labels.empty()) return ListByLabelSql(query, states);
  const Dialect& d = sql_.dialect;
  int next = 2;  // 1: the limit
  std::string filters;
  if (query.after.has_value()) {
    absl::StrAppend(&filters, " AND ", d.RowBefore(next, next + 1));
    next += 2;
  }
  if (!query.backend.empty()) absl::StrAppend(&filters, " AND backend = ", d.Param(next++));
  if (!query.caller.empty()) absl::StrAppend(&filters, " AND caller = ", d.Param(next++));
  const std::string order = absl::StrCat(" ORDER BY create_time DESC, id DESC LIMIT ", d.Param(1));
  const std::string select = absl::StrCat("SELECT ", sql_.columns, " FROM tasks WHERE ");
  if (states <= 1) {
    std::string sql = absl::StrCat(select, "TRUE", filters);
    // A plain equality, not "= ANY(array)": PostgreSQL reads an index range
    // in order only for it, instead of sorting every matching row.
    if (states == 1) absl::StrAppend(&sql, " AND state = ", d.Param(next));
    return absl::StrCat(sql, order);
  }
  // One index range per state (state, create_time, id), merged: no sort of
  // every matching row.
  std::vector<std::string> branches;
  for (size_t i = 0; i < states; ++i) {
    branches.push_back(absl::StrCat("SELECT * FROM (", select, "state = ",
                                    d.Param(next + static_cast<int>(i)), filters, order, ") AS s",
                                    i));
  }
  return absl::StrCat(absl::StrJoin(branches, " UNION ALL "), order);
}

// The first label's range of task_labels_list, newest first, walks the
// page (CROSS JOIN: SQLite keeps task_labels the outer loop); each row's
// task is fetched by id and checked against the other filters.
std::string TaskTable::ListByLabelSql(const ListQuery& query, size_t states) const {
  const Dialect& d = sql_.dialect;
  int next = 2;  // 1: the limit
  std::string cursor;
  if (query.after.has_value()) {
    cursor = absl::StrCat(" AND ", d.RowBefore(next, next + 1, "l.create_time", "l.task_id"));
    next += 2;
  }
  std::string filters;
  if (!query.backend.empty()) absl::StrAppend(&filters, " AND tasks.backend = ", d.Param(next++));
  if (!query.caller.empty()) absl::StrAppend(&filters, " AND tasks.caller = ", d.Param(next++));
  std::string sql = absl::StrCat("SELECT ", TaskColumnList("tasks."),
                                 " FROM task_labels l CROSS JOIN tasks WHERE l.key = ",
                                 d.Param(next), " AND l.value = ", d.Param(next + 1), cursor,
                                 " AND tasks.id = l.task_id", filters);
  next += 2;
  for (size_t i = 1; i < query.labels.size(); ++i) {
    absl::StrAppend(&sql,
                    " AND EXISTS (SELECT 1 FROM task_labels o WHERE o.task_id = tasks.id"
                    " AND o.key = ",
                    d.Param(next), " AND o.value = ", d.Param(next + 1), ")");
    next += 2;
  }
  if (states > 0 && d.has_arrays()) {
    absl::StrAppend(&sql, " AND tasks.state = ANY(", d.Param(next, "int[]"), ")");
  } else if (states > 0) {
    std::vector<std::string> params;
    for (size_t i = 0; i < states; ++i) params.push_back(d.Param(next + static_cast<int>(i)));
    absl::StrAppend(&sql, " AND tasks.state IN (", absl::StrJoin(params, ", "), ")");
  }
  return absl::StrCat(sql, " ORDER BY l.create_time DESC, l.task_id DESC LIMIT ", d.Param(1));
}

absl::StatusOr<ListPage> TaskTable::List(SqlSession& session, const ListQuery& query) const {
  const int page_size = std::clamp(query.page_size, 1, 1000);
  const std::vector<int> states = SortedStates(query.states);
  ListPage page;
  page.tasks.reserve(static_cast<size_t>(page_size));
  VT_RETURN_IF_ERROR(session.Query(
      absl::StrCat(kPlanEachCall, ListSql(query, states.size())),
      [&](RowWriter& w) { BindList(w, sql_.dialect, query, page_size, states); },
      [&](const RowReader& row) -> absl::Status {
        if (static_cast<int>(page.tasks.size()) == page_size) {
          page.has_more = true;
          return absl::OkStatus();
        }
        VT_ASSIGN_OR_RETURN(Task task, ReadTaskRow(row));
        page.tasks.push_back(std::move(task));
        return absl::OkStatus();
      }));
  return page;
}

absl::StatusOr<std::vector<std::string>> TaskTable::ExplainList(SqlSession& session,
                                                                const ListQuery& query) const {
  const int page_size = std::clamp(query.page_size, 1, 1000);
  const std::vector<int> states = SortedStates(query.states);
  const bool sqlite = sql_.dialect.kind() == Dialect::Kind::kSqlite;
  std::vector<std::string> lines;
  std::map<int64_t, int> depth;  // SQLite: step id -> depth
  VT_RETURN_IF_ERROR(session.Query(
      absl::StrCat(kPlanEachCall, sqlite ? "EXPLAIN QUERY PLAN " : "EXPLAIN ",
                   ListSql(query, states.size())),
      [&](RowWriter& w) { BindList(w, sql_.dialect, query, page_size, states); },
      [&](const RowReader& row) -> absl::Status {
        if (!sqlite) {
          lines.push_back(row.Text(0));
          return absl::OkStatus();
        }
        auto parent = depth.find(row.Int(1));
        const int level = parent == depth.end() ? 0 : parent->second + 1;
        depth[row.Int(0)] = level;
        lines.push_back(absl::StrCat(std::string(2 * static_cast<size_t>(level), ' '),
                                     row.Text(3)));
        return absl::OkStatus();
      }));
  return lines;
}

absl::StatusOr<std::vector<Task>> TaskTable::ListRecoverable(SqlSession& session,
                                                             absl::string_view owner,
                                                             absl::Time now) const {
  return Select(session, sql_.list_recoverable,
                [&](RowWriter& w) { w.Text(owner).Int(CompareMicros(now)); });
}

absl::StatusOr<absl::Time> TaskTable::NextQueuedTime(SqlSession& session,
                                                     absl::string_view backend) const {
  absl::Time next = absl::InfiniteFuture();
  VT_RETURN_IF_ERROR(session.Query(
      sql_.next_queued, [&](RowWriter& w) { w.Text(backend); },
      [&](const RowReader& row) {
        next = row.Time(0);
        return absl::OkStatus();
      }));
  return next;
}

absl::StatusOr<int64_t> TaskTable::CountQueued(SqlSession& session) const {
  // From the per-backend counts the triggers keep, not COUNT(*): that reads
  // one index entry per QUEUED task (34 ms at 175,000 queued, 0.6 s cold),
  // and submits ask for it every second.
  VT_ASSIGN_OR_RETURN(std::vector<StateCount> counts, ReadStateCounts(session, sql_.dialect));
  int64_t count = 0;
  for (const StateCount& c : counts) {
    if (c.state == TaskState::kQueued) count += c.count;
  }
  return count;
}

absl::StatusOr<int64_t> TaskTable::CountQueuedOf(SqlSession& session,
                                                 absl::string_view caller) const {
  int64_t count = 0;
  VT_RETURN_IF_ERROR(session.Query(
      sql_.count_queued_of, [&](RowWriter& w) { w.Text(caller); },
      [&](const RowReader& row) {
        count = row.Int(0);
        return absl::OkStatus();
      }));
  return count;
}

absl::StatusOr<std::vector<CallerQueue>> TaskTable::ClaimQueues(SqlSession& session,
                                                                absl::string_view backend,
                                                                int limit, absl::Time now) const {
  std::vector<CallerQueue> queues;
  VT_RETURN_IF_ERROR(session.Query(
      sql_.claim_callers, [&](RowWriter& w) { w.Text(backend); },
      [&](const RowReader& row) {
        queues.push_back(CallerQueue{row.Text(0), 0, {}});
        return absl::OkStatus();
      }));
  if (queues.size() > 1) {
    VT_RETURN_IF_ERROR(session.Query(
        sql_.claim_active, [&](RowWriter& w) { w.Text(backend); },
        [&](const RowReader& row) {
          const std::string caller = row.Text(0);
          for (CallerQueue& q : queues) {
            if (q.caller == caller) q.active = row.Int(1);
          }
          return absl::OkStatus();
        }));
  }
  for (CallerQueue& q : queues) {
    VT_RETURN_IF_ERROR(session.Query(
        sql_.claim_head,
        [&](RowWriter& w) { w.Text(backend).Text(q.caller).Int(CompareMicros(now)).Int(limit); },
        [&](const RowReader& row) {
          q.next.push_back(ClaimCandidate{row.Text(0), static_cast<int>(row.Int(1)),
                                          TimeFromMicros(row.Int(2)), row.Int(3)});
          return absl::OkStatus();
        }));
  }
  return queues;
}

absl::StatusOr<std::vector<Task>> TaskTable::Claim(SqlSession& session, absl::string_view backend,
                                                   int limit, absl::Time now,
                                                   absl::string_view owner,
                                                   absl::Time lease_expiry,
                                                   const DailyBudgets* budgets) const {
  std::vector<Task> claimed;
  if (limit <= 0) return claimed;
  VT_ASSIGN_OR_RETURN(std::vector<CallerQueue> queues, ClaimQueues(session, backend, limit, now));
  ClaimBudget budget(spend_, budgets, backend, now);
  VT_RETURN_IF_ERROR(budget.Prepare(session, queues));
  for (const std::string& id : PickFairly(std::move(queues), limit)) {
    if (!budget.Take(id)) continue;
    VT_ASSIGN_OR_RETURN(std::vector<Task> tasks,
                        UpdateRow(session, sql_.claim_one, id, [&](RowWriter& w) {
                          w.Text(id).Text(owner).Time(lease_expiry).Int(CompareMicros(now));
                        }));
    // Gone only if another writer took it between the pick and now, which
    // the engines' transactions rule out; skipped rather than failed.
    for (Task& task : tasks) {
      budget.Charge(task.caller, task.estimated_cost_micros);
      claimed.push_back(std::move(task));
    }
  }
  VT_RETURN_IF_ERROR(budget.Commit(session));
  return claimed;
}

absl::Status TaskTable::RenewLeases(SqlSession& session, absl::string_view owner,
                                    absl::Time lease_expiry) const {
  return session.Exec(sql_.renew, [&](RowWriter& w) { w.Text(owner).Time(lease_expiry); });
}

absl::StatusOr<std::vector<Task>> TaskTable::DeleteEnded(SqlSession& session,
                                                         absl::Time ended_before,
                                                         int limit) const {
  if (limit <= 0) return std::vector<Task>();
  VT_ASSIGN_OR_RETURN(std::vector<Task> deleted,
                      Select(session, sql_.delete_ended, [&](RowWriter& w) {
                        w.Int(CompareMicros(ended_before)).Int(limit);
                      }));
  VT_RETURN_IF_ERROR(ForgetDeleted(session, deleted));
  // RETURNING gives no order: oldest end first, as they were chosen.
  std::sort(deleted.begin(), deleted.end(), [](const Task& a, const Task& b) {
    return std::tie(a.end_time, a.id) < std::tie(b.end_time, b.id);
  });
  return deleted;
}

absl::Status TaskTable::ForgetDeleted(SqlSession& session,
                                           const std::vector<Task>& deleted) const {
  // The base a stub was allocated from: the stub itself, or without its
  // "_<n>" suffix. Sorted, so concurrent writers lock counters in one order.
  std::vector<std::string> bases;
  for (const Task& task : deleted) {
    const std::string& stub = task.target_filename_stub;
    bases.push_back(stub);
    const size_t underscore = stub.rfind('_');
    if (underscore != std::string::npos && underscore > 0 && underscore + 1 < stub.size() &&
        stub.find_first_not_of("0123456789", underscore + 1) == std::string::npos) {
      bases.push_back(stub.substr(0, underscore));
    }
  }
  std::sort(bases.begin(), bases.end());
  bases.erase(std::unique(bases.begin(), bases.end()), bases.end());
  for (const std::string& base : bases) {
    VT_RETURN_IF_ERROR(
        session.Exec(sql_.forget_stub_counter, [&](RowWriter& w) { w.Text(base); }));
  }
  for (const Task& task : deleted) VT_RETURN_IF_ERROR(outbox_.ForgetEnded(session, task.id));
  return absl::OkStatus();
}

absl::StatusOr<Task> TaskTable::Delete(SqlSession& session, absl::string_view id) const {
  VT_ASSIGN_OR_RETURN(std::vector<Task> deleted,
                      Select(session, sql_.delete_one, [&](RowWriter& w) { w.Text(id); }));
  if (!deleted.empty()) {
    VT_RETURN_IF_ERROR(ForgetDeleted(session, deleted));
    return std::move(deleted.front());
  }
  VT_ASSIGN_OR_RETURN(Task current, Get(session, id));  // NOT_FOUND for an unknown id
  if (IsTerminal(current.state)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "task ", id, " is CANCELLED but its provider task is still being cancelled; delete it "
        "once that is done"));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("task ", id, " is ", TaskStateName(current.state),
                   "; only SUCCEEDED, FAILED or CANCELLED tasks can be deleted (cancel it first)"));
}

absl::StatusOr<std::vector<Task>> TaskTable::ListKeptOutputs(SqlSession& session,
                                                             absl::Time ended_before,
                                                             int limit) const {
  if (limit <= 0) return std::vector<Task>();
  return Select(session, sql_.list_kept_outputs,
                [&](RowWriter& w) { w.Int(CompareMicros(ended_before)).Int(limit); });
}

absl::StatusOr<bool> TaskTable::ImageInUse(SqlSession& session, absl::string_view sha256) const {
  bool used = false;
  VT_RETURN_IF_ERROR(session.Query(
      sql_.image_in_use, [&](RowWriter& w) { w.Text(sha256); },
      [&](const RowReader&) {
        used = true;
        return absl::OkStatus();
      }));
  return used;
}

absl::StatusOr<std::vector<Task>> TaskTable::FindByRequestId(SqlSession& session,
                                                             const Task& task) const {
  VT_ASSIGN_OR_RETURN(
      std::vector<Task> found,
      Select(session, sql_.select_by_request_id, [&](RowWriter& w) { w.Text(task.request_id); }));
  if (!found.empty() && found.front().spec_fingerprint != task.spec_fingerprint) {
    return absl::AlreadyExistsError(absl::StrCat("request_id \"", task.request_id,
                                                 "\" was already used by task ", found.front().id,
                                                 " with a different spec"));
  }
  return found;
}

absl::Status TaskTable::InsertLabels(SqlSession& session, const Task& task) const {
  if (task.spec.labels.empty()) return absl::OkStatus();
  return session.Exec(sql_.InsertLabels(task.spec.labels.size()), [&](RowWriter& w) {
    w.Text(task.id).Time(task.create_time);
    for (const auto& [key, value] : task.spec.labels) w.Text(key).Text(value);
  });
}

absl::StatusOr<InsertResult> TaskTable::Insert(SqlSession& session, InsertHooks& hooks,
                                               const Clock& clock, const NewTask& item) const {
  Task task = item.task;
  if (task.id.empty()) return absl::InvalidArgumentError("task id is empty");
  if (task.target_filename_stub.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("task ", task.id, ": target_filename_stub is empty"));
  }
  InsertResult result;
  if (!task.request_id.empty()) {
    VT_ASSIGN_OR_RETURN(std::vector<Task> found, FindByRequestId(session, task));
    if (!found.empty()) {
      result.task = std::move(found.front());
      result.created = false;
      return result;
    }
  }
  if (item.reuse) VT_RETURN_IF_ERROR(MatchIdentical(session, task, result));
  if (!task.image_sha256.empty() && !item.image_bytes.empty()) {
    VT_RETURN_IF_ERROR(WithContext(hooks.StoreImage(task, item.image_bytes),
                                   absl::StrCat("store image of task ", task.id)));
  }
  VT_ASSIGN_OR_RETURN(task.target_filename_stub, hooks.AllocateStub(task.target_filename_stub));
  if (task.caller.empty()) task.caller = kAnonymousCaller;
  if (task.create_time == absl::InfinitePast()) task.create_time = clock.Now();
  if (task.update_time == absl::InfinitePast()) task.update_time = task.create_time;
  task.version = 1;
  // A unique violation here (a racing replica stored the same request_id)
  // keeps its payload: the engine may retry the insert.
  VT_RETURN_IF_ERROR(
      WithContext(session.Exec(sql_.insert, [&](RowWriter& w) { WriteTaskRow(task, w); }),
                  absl::StrCat("insert task ", task.id)));
  VT_RETURN_IF_ERROR(InsertLabels(session, task));
  VT_RETURN_IF_ERROR(outbox_.Write(session, outbox_policy_.load(), task, std::nullopt));
  if (MayReleaseImage(task)) VT_RETURN_IF_ERROR(hooks.ReleaseImage(task.image_sha256));
  task.stored_state = task.state;  // as read back, so its next update knows where it came from
  result.task = std::move(task);
  result.created = true;
  return result;
}

absl::Status TaskTable::MatchIdentical(SqlSession& session, Task& task,
                                       InsertResult& result) const {
  task.reuse_key = ReuseKey(task);
  if (task.reuse_key.empty()) return absl::OkStatus();
  VT_ASSIGN_OR_RETURN(std::vector<Task> found,
                      Select(session, sql_.find_identical,
                             [&](RowWriter& w) { w.Text(task.reuse_key); }));
  if (found.empty()) return absl::OkStatus();
  // Stored QUEUED but never claimed (next attempt "never") until the engine
  // finishes it from, or releases it after, the task it follows.
  task.reused_from = found.front().id;
  task.next_attempt_time = absl::InfiniteFuture();
  task.provider_status = absl::StrCat("waiting for ", task.reused_from, " (identical)");
  if (found.front().state == TaskState::kSucceeded) {
    result.reused = std::make_shared<const Task>(std::move(found.front()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Task>> TaskTable::ListFollowers(SqlSession& session,
                                                           absl::string_view of, int limit) const {
  if (of.empty()) {
    return Select(session, sql_.list_followers, [&](RowWriter& w) { w.Int(limit); });
  }
  return Select(session, sql_.list_followers_of, [&](RowWriter& w) { w.Text(of).Int(limit); });
}

absl::StatusOr<Task> TaskTable::Update(SqlSession& session, const Task& task) const {
  VT_ASSIGN_OR_RETURN(std::vector<Task> stored,
                      UpdateRow(session, sql_.update, task.id,
                                [&](RowWriter& w) { WriteTaskUpdate(task, w); }));
  if (!stored.empty()) {
    // The compare-and-set held, so the row left the state `task` was read in.
    if (task.stored_state.has_value() && *task.stored_state != stored.front().state) {
      VT_RETURN_IF_ERROR(
          outbox_.Write(session, outbox_policy_.load(), stored.front(), task.stored_state));
    }
    return std::move(stored.front());
  }
  std::optional<int64_t> version;
  VT_RETURN_IF_ERROR(session.Query(
      sql_.version_of, [&](RowWriter& w) { w.Text(task.id); },
      [&](const RowReader& row) {
        version = row.Int(0);
        return absl::OkStatus();
      }));
  if (!version.has_value())
    return absl::NotFoundError(absl::StrCat("task ", task.id, " not found"));
  return absl::AbortedError(absl::StrCat("task ", task.id, " changed meanwhile (stored version ",
                                         *version, ", given ", task.version, ")"));
}

}  // namespace videotask::store::internal
