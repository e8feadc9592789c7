// The store core's SqlSession over one libpq connection: parameters go
// through PQexecParams, rows are read from the text-format result.
#ifndef VIDEOTASK_SERVER_STORE_POSTGRES_PG_SESSION_H_
#define VIDEOTASK_SERVER_STORE_POSTGRES_PG_SESSION_H_

#include <string>

#include "absl/status/status.h"
#include "server/store/postgres/pg.h"
#include "server/store/sql_session.h"

namespace videotask::store::pg {

// Used by one thread at a time, like the connection it borrows (which must
// outlive it). With `binary_result`, columns come back in binary format: a
// bytea column's Text is then its raw bytes (other types are unreadable).
class PgSession final : public internal::SqlSession {
 public:
  explicit PgSession(Connection& conn, bool binary_result = false)
      : conn_(conn), binary_result_(binary_result) {}
  absl::Status Query(const std::string& sql, Bind bind, OnRow on_row) override;

 private:
  Connection& conn_;
  const bool binary_result_;
};

}  // namespace videotask::store::pg

#endif  // VIDEOTASK_SERVER_STORE_POSTGRES_PG_SESSION_H_
