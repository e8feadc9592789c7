#include "server/store/backend_pauses.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace videotask::store::internal {
namespace {

// Columns of every statement's result: backend, reason, caller, since.
constexpr char kColumns[] = "backend, reason, caller, since";

BackendPause ReadPause(const RowReader& row) {
  BackendPause pause;
  pause.backend = row.Text(0);
  pause.reason = row.Text(1);
  pause.caller = row.Text(2);
  pause.since = row.Time(3);
  return pause;
}

}  // namespace

PauseTable::PauseTable(const Dialect& d)
    : upsert_(absl::StrCat("INSERT INTO backend_pauses (", kColumns, ") VALUES (", d.Param(1),
                           ", ", d.Param(2), ", ", d.Param(3), ", ", d.Param(4),
                           ") ON CONFLICT (backend) DO UPDATE SET reason = excluded.reason, "
                           "caller = excluded.caller RETURNING ",
                           kColumns)),
      delete_(absl::StrCat("DELETE FROM backend_pauses WHERE backend = ", d.Param(1),
                           " RETURNING backend")),
      select_(absl::StrCat("SELECT ", kColumns, " FROM backend_pauses ORDER BY backend")) {}

absl::StatusOr<BackendPause> PauseTable::Pause(SqlSession& session,
                                               const BackendPause& pause) const {
  if (pause.backend.empty()) return absl::InvalidArgumentError("backend name is empty");
  if (pause.since == absl::InfinitePast()) {
    return absl::InvalidArgumentError("the time a pause starts is unset");
  }
  std::optional<BackendPause> stored;
  VT_RETURN_IF_ERROR(session.Query(
      upsert_,
      [&](RowWriter& w) {
        w.Text(pause.backend).Text(pause.reason).Text(pause.caller).Time(pause.since);
      },
      [&](const RowReader& row) {
        stored = ReadPause(row);
        return absl::OkStatus();
      }));
  if (!stored.has_value()) return absl::InternalError("storing the pause returned no row");
  return *std::move(stored);
}

absl::StatusOr<bool> PauseTable::Resume(SqlSession& session, absl::string_view backend) const {
  bool deleted = false;
  VT_RETURN_IF_ERROR(session.Query(
      delete_, [&](RowWriter& w) { w.Text(backend); },
      [&](const RowReader&) {
        deleted = true;
        return absl::OkStatus();
      }));
  return deleted;
}

absl::StatusOr<std::vector<BackendPause>> PauseTable::List(SqlSession& session) const {
  std::vector<BackendPause> pauses;
  VT_RETURN_IF_ERROR(session.Query(select_, NoParams, [&](const RowReader& row) {
    pauses.push_back(ReadPause(row));
    return absl::OkStatus();
  }));
  return pauses;
}

}  // namespace videotask::store::internal
