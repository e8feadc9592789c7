// SqliteTaskStore's retention writes (DeleteEnded, Delete) and the
// incremental vacuum that gives freed pages back to the file system.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/store/sqlite/sqlite_session.h"
#include "server/store/sqlite/sqlite_task_store.h"
#include "server/store/sqlite/sqlite_write_ops.h"
#include "server/store/store_util.h"

namespace videotask::store {

using sqlite::SqliteSession;

absl::StatusOr<std::vector<Task>> SqliteTaskStore::DeleteEnded(absl::Time ended_before,
                                                               int limit) {
  std::vector<Task> deleted;
  VT_RETURN_IF_ERROR(RunOnWriter([&](WriteContext& ctx) -> absl::Status {
    SqliteSession session(writer_db_);
    VT_ASSIGN_OR_RETURN(deleted, table_.DeleteEnded(session, ended_before, limit));
    for (const Task& task : deleted) {
      if (internal::IsHexDigest(task.image_sha256)) ctx.blob_candidates.insert(task.image_sha256);
    }
    return absl::OkStatus();
  }));
  return deleted;
}

absl::StatusOr<Task> SqliteTaskStore::Delete(absl::string_view id) {
  absl::StatusOr<Task> result = absl::InternalError("delete not run");
  std::string id_copy(id);
  VT_RETURN_IF_ERROR(RunOnWriter([&](WriteContext& ctx) -> absl::Status {
    SqliteSession session(writer_db_);
    result = table_.Delete(session, id_copy);
    if (result.ok() && internal::IsHexDigest(result->image_sha256)) {
      ctx.blob_candidates.insert(result->image_sha256);
    }
    return result.status();
  }));
  return result;
}

absl::StatusOr<int64_t> SqliteTaskStore::ReclaimSpace(int64_t max_pages) {
  if (max_pages <= 0) return 0;
  int64_t reclaimed = 0;
  VT_RETURN_IF_ERROR(RunOnWriter([&](WriteContext&) -> absl::Status {
    VT_ASSIGN_OR_RETURN(int64_t before, writer_db_.QueryInt64("PRAGMA freelist_count"));
    // A no-op on a file made without auto_vacuum (freed pages are reused
    // there instead).
    VT_RETURN_IF_ERROR(
        writer_db_.ExecScript(absl::StrCat("PRAGMA incremental_vacuum(", max_pages, ")")));
    VT_ASSIGN_OR_RETURN(int64_t after, writer_db_.QueryInt64("PRAGMA freelist_count"));
    reclaimed = before - after;
    return absl::OkStatus();
  }));
  return reclaimed;
}

}  // namespace videotask::store
