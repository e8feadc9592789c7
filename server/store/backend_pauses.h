// The paused backends (table `backend_pauses`), written once for every
// engine: a paused backend's queued tasks wait and none is sent to its
// provider until it is resumed.
#ifndef VIDEOTASK_SERVER_STORE_BACKEND_PAUSES_H_
#define VIDEOTASK_SERVER_STORE_BACKEND_PAUSES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/store/dialect.h"
#include "server/store/sql_session.h"
#include "server/store/task_store.h"

namespace videotask::store::internal {

class PauseTable {
 public:
  explicit PauseTable(const Dialect& dialect);

  // task_store.h's contracts, on one session (a write transaction for
  // Pause and Resume).
  absl::StatusOr<BackendPause> Pause(SqlSession& session, const BackendPause& pause) const;
  absl::StatusOr<bool> Resume(SqlSession& session, absl::string_view backend) const;
  absl::StatusOr<std::vector<BackendPause>> List(SqlSession& session) const;

 private:
  const std::string upsert_;  // backend, reason, caller, since -> the stored row
  const std::string delete_;  // backend -> the deleted backend, if any
  const std::string select_;  // -> every row by backend
};

}  // namespace videotask::store::internal

#endif  // VIDEOTASK_SERVER_STORE_BACKEND_PAUSES_H_
