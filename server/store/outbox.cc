#include "server/store/outbox.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "server/store/store_util.h"
#include "server/store/task_row.h"

namespace videotask::store::internal {
namespace {

constexpr ColumnDef kOutboxColumns[kNumOutboxColumns] = {
    {"id", SqlType::kKey, "PRIMARY KEY NOT NULL"},
    {"task_id", SqlType::kKey, "NOT NULL"},
    {"url", SqlType::kText, "NOT NULL"},
    {"event_type", SqlType::kText, "NOT NULL"},
    {"event_time", SqlType::kBigInt, "NOT NULL"},
    {"payload", SqlType::kText, "NOT NULL"},
    {"state", SqlType::kInt, "NOT NULL CHECK (state BETWEEN 1 AND 3)"},
    {"attempts", SqlType::kInt, "NOT NULL DEFAULT 0"},
    {"last_status_code", SqlType::kInt, "NOT NULL DEFAULT 0"},
    {"last_error", SqlType::kText, "NOT NULL DEFAULT ''"},
    {"next_attempt_time", SqlType::kBigInt, "NOT NULL"},
    {"delivered_time", SqlType::kBigInt, ""},
    {"lease_owner", SqlType::kText, "NOT NULL DEFAULT ''"},
    {"lease_expiry", SqlType::kBigInt, ""},
};

// Every column, `prefix`ed; the payload as '' when `payload` is false.
std::string Columns(bool payload) {
  std::vector<std::string> names;
  for (int c = 0; c < kNumOutboxColumns; ++c) {
    names.push_back(c == kOutPayload && !payload ? "'' AS payload" : kOutboxColumns[c].name);
  }
  return absl::StrJoin(names, ", ");
}

absl::StatusOr<OutboxMessage> ReadMessage(const RowReader& row) {
  OutboxMessage m;
  m.id = row.Text(kOutId);
  m.task_id = row.Text(kOutTaskId);
  m.url = row.Text(kOutUrl);
  m.event_type = row.Text(kOutEventType);
  m.event_time = row.Time(kOutEventTime);
  m.payload = row.Text(kOutPayload);
  const int64_t state = row.Int(kOutState);
  if (state < 1 || state > 3) {
    return absl::InternalError(absl::StrCat("webhook message ", m.id, " has a bad state"));
  }
  m.state = static_cast<DeliveryState>(state);
  m.attempts = static_cast<int>(row.Int(kOutAttempts));
  m.last_status_code = static_cast<int>(row.Int(kOutLastStatus));
  m.last_error = row.Text(kOutLastError);
  m.next_attempt_time = row.Time(kOutNextAttempt);
  m.delivered_time = row.Time(kOutDeliveredTime);
  return m;
}

absl::Status ReadInto(const RowReader& row, std::vector<OutboxMessage>& out) {
  VT_ASSIGN_OR_RETURN(OutboxMessage m, ReadMessage(row));
  out.push_back(std::move(m));
  return absl::OkStatus();
}

std::string Params(const Dialect& d, int from, int n) {
  std::vector<std::string> params;
  for (int i = 0; i < n; ++i) params.push_back(d.Param(from + i));
  return absl::StrJoin(params, ", ");
}

}  // namespace

const ColumnDef* OutboxColumnDefs() { return kOutboxColumns; }

OutboxTable::OutboxTable(const Dialect& d)
    : insert_(absl::StrCat("INSERT INTO webhook_outbox (", Columns(true), ") VALUES (",
                           Params(d, 1, kNumOutboxColumns), ")")),
      // Earliest due first; PostgreSQL skips rows another replica's claim
      // holds, so each message goes to one claimer.
      claim_(absl::StrCat(
          "UPDATE webhook_outbox SET lease_owner = ", d.Param(3), ", lease_expiry = ",
          d.Param(4, "bigint"), " WHERE id IN (SELECT id FROM webhook_outbox WHERE state = 1",
          " AND next_attempt_time <= ", d.Param(1, "bigint"),
          " AND (lease_expiry IS NULL OR lease_expiry <= ", d.Param(1, "bigint"), ")",
          " ORDER BY next_attempt_time LIMIT ", d.Param(2, "bigint"),
          d.kind() == Dialect::Kind::kPostgres ? " FOR UPDATE SKIP LOCKED" : "", ") RETURNING ",
          Columns(true))),
      finish_(absl::StrCat("UPDATE webhook_outbox SET state = ", d.Param(3, "integer"),
                           ", attempts = ", d.Param(4, "integer"), ", last_status_code = ",
                           d.Param(5, "integer"), ", last_error = ", d.Param(6),
                           ", next_attempt_time = ", d.Param(7, "bigint"),
                           ", delivered_time = ", d.Param(8, "bigint"),
                           ", lease_owner = '', lease_expiry = NULL WHERE id = ", d.Param(1),
                           " AND lease_owner = ", d.Param(2), " RETURNING id")),
      exists_(absl::StrCat("SELECT id FROM webhook_outbox WHERE id = ", d.Param(1))),
      list_(absl::StrCat("SELECT ", Columns(false), " FROM webhook_outbox WHERE task_id = ",
                         d.Param(1), " ORDER BY event_time, id")),
      forget_(absl::StrCat("DELETE FROM webhook_outbox WHERE task_id = ", d.Param(1),
                           " AND state <> 1")) {}

absl::Status OutboxTable::Write(SqlSession& session, const OutboxPolicy* policy, const Task& task,
                                std::optional<TaskState> from) const {
  if (policy == nullptr) return absl::OkStatus();
  for (const OutboxMessage& m : policy->OnStored(task, from)) {
    VT_RETURN_IF_ERROR(WithContext(
        session.Exec(insert_,
                     [&](RowWriter& w) {
                       w.Text(m.id).Text(m.task_id).Text(m.url).Text(m.event_type);
                       w.Int(CompareMicros(m.event_time)).Text(m.payload);
                       w.Int(static_cast<int>(m.state)).Int(m.attempts).Int(m.last_status_code);
                       w.Text(m.last_error).Int(CompareMicros(m.next_attempt_time));
                       w.Time(m.delivered_time).Text("").Null();
                     }),
        absl::StrCat("webhook outbox row of task ", task.id)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<OutboxMessage>> OutboxTable::Claim(SqlSession& session, absl::Time now,
                                                              int limit, absl::string_view owner,
                                                              absl::Time lease_expiry) const {
  std::vector<OutboxMessage> out;
  VT_RETURN_IF_ERROR(session.Query(
      claim_,
      [&](RowWriter& w) {
        w.Int(CompareMicros(now)).Int(limit).Text(owner).Int(CompareMicros(lease_expiry));
      },
      [&](const RowReader& row) { return ReadInto(row, out); }));
  // RETURNING gives no order: earliest due first.
  std::sort(out.begin(), out.end(), [](const OutboxMessage& a, const OutboxMessage& b) {
    return a.next_attempt_time < b.next_attempt_time;
  });
  return out;
}

absl::Status OutboxTable::Finish(SqlSession& session, const DeliveryResult& r) const {
  bool updated = false;
  VT_RETURN_IF_ERROR(session.Query(
      finish_,
      [&](RowWriter& w) {
        w.Text(r.id).Text(r.owner).Int(static_cast<int>(r.state)).Int(r.attempts);
        w.Int(r.last_status_code).Text(r.last_error);
        w.Int(CompareMicros(r.next_attempt_time)).Time(r.delivered_time);
      },
      [&](const RowReader&) {
        updated = true;
        return absl::OkStatus();
      }));
  if (updated) return absl::OkStatus();
  bool exists = false;
  VT_RETURN_IF_ERROR(session.Query(
      exists_, [&](RowWriter& w) { w.Text(r.id); },
      [&](const RowReader&) {
        exists = true;
        return absl::OkStatus();
      }));
  if (!exists) return absl::NotFoundError(absl::StrCat("webhook message ", r.id, " not found"));
  return absl::AbortedError(
      absl::StrCat("webhook message ", r.id, " is no longer leased to this process"));
}

absl::StatusOr<std::vector<OutboxMessage>> OutboxTable::ListForTask(
    SqlSession& session, absl::string_view task_id) const {
  std::vector<OutboxMessage> out;
  VT_RETURN_IF_ERROR(session.Query(
      list_, [&](RowWriter& w) { w.Text(task_id); },
      [&](const RowReader& row) { return ReadInto(row, out); }));
  return out;
}

absl::Status OutboxTable::ForgetEnded(SqlSession& session, absl::string_view task_id) const {
  return session.Exec(forget_, [&](RowWriter& w) { w.Text(task_id); });
}

}  // namespace videotask::store::internal
