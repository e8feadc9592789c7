// The store core's SqlSession over one SQLite connection: statements come
// from the connection's cache, parameters are bound by number and rows are
// read from the stepping statement.
#ifndef VIDEOTASK_SERVER_STORE_SQLITE_SQLITE_SESSION_H_
#define VIDEOTASK_SERVER_STORE_SQLITE_SQLITE_SESSION_H_

#include <string>

#include "absl/status/status.h"
#include "server/store/sql_session.h"
#include "server/store/sqlite/sqlite.h"

namespace videotask::store::sqlite {

// Used by one thread at a time, like the connection it borrows (which must
// outlive it).
class SqliteSession final : public internal::SqlSession {
 public:
  explicit SqliteSession(Database& db) : db_(db) {}
  absl::Status Query(const std::string& sql, Bind bind, OnRow on_row) override;

 private:
  Database& db_;
};

}  // namespace videotask::store::sqlite

#endif  // VIDEOTASK_SERVER_STORE_SQLITE_SQLITE_SESSION_H_
