// Schema versions of the PostgreSQL task database, recorded in the
// `videotask_schema` table (one row: the version).
#ifndef VIDEOTASK_SERVER_STORE_POSTGRES_PG_MIGRATIONS_H_
#define VIDEOTASK_SERVER_STORE_POSTGRES_PG_MIGRATIONS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "server/store/postgres/pg.h"

namespace videotask::store::pg {

// The schema version this binary writes.
int64_t LatestSchemaVersion();

// Brings the database up to LatestSchemaVersion(), all steps in one
// transaction under an advisory lock (replicas starting together migrate
// once). FAILED_PRECONDITION when the database is newer than this binary.
absl::Status Migrate(Connection& conn);

}  // namespace videotask::store::pg

#endif  // VIDEOTASK_SERVER_STORE_POSTGRES_PG_MIGRATIONS_H_
