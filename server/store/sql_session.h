// The one thing the shared store core asks of an engine: run a statement
// with parameters and hand over its rows (SQLite: a prepared statement on a
// connection; PostgreSQL: PQexecParams on a pooled connection).
#ifndef VIDEOTASK_SERVER_STORE_SQL_SESSION_H_
#define VIDEOTASK_SERVER_STORE_SQL_SESSION_H_

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "server/store/task_row.h"

namespace videotask::store::internal {

class SqlSession {
 public:
  using Bind = absl::FunctionRef<void(RowWriter&)>;
  using OnRow = absl::FunctionRef<absl::Status(const RowReader&)>;

  virtual ~SqlSession() = default;

  // Runs `sql` with the parameters `bind` writes (placeholder 1, 2, ... in
  // order) and calls `on_row` for each result row; the first error ends it.
  // Not thread-safe: a session belongs to one connection in one thread.
  virtual absl::Status Query(const std::string& sql, Bind bind, OnRow on_row) = 0;

  // A statement whose rows, if any, are not needed.
  absl::Status Exec(const std::string& sql, Bind bind) {
    return Query(sql, bind, [](const RowReader&) { return absl::OkStatus(); });
  }
};

// A Bind without parameters.
inline void NoParams(RowWriter&) {}

}  // namespace videotask::store::internal

#endif  // VIDEOTASK_SERVER_STORE_SQL_SESSION_H_
