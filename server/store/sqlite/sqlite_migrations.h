// Schema versions of the SQLite task database, applied by PRAGMA
// user_version.
#ifndef VIDEOTASK_SERVER_STORE_SQLITE_SQLITE_MIGRATIONS_H_
#define VIDEOTASK_SERVER_STORE_SQLITE_SQLITE_MIGRATIONS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "server/store/sqlite/sqlite.h"

namespace videotask::store {

// The schema version this binary writes.
int64_t LatestSchemaVersion();

// Brings `db` up to LatestSchemaVersion(), one transaction per step (each
// step sets user_version in its own transaction). FAILED_PRECONDITION when
// the file is newer than this binary.
absl::Status Migrate(sqlite::Database& db);

}  // namespace videotask::store

#endif  // VIDEOTASK_SERVER_STORE_SQLITE_SQLITE_MIGRATIONS_H_
