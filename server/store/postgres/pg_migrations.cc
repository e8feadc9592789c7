#include "server/store/postgres/pg_migrations.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/store/schema.h"
#include "server/store/state_counts.h"

namespace videotask::store::pg {
namespace {

// What only the shared PostgreSQL database has on top of the common schema
// (schema.h): images stored out of line, the limits every replica honours,
// and the change feed. Every committed change of a task but lease renewals
// (which keep the version) is announced on the channel `videotask_tasks`
// with the payload "<origin> <task id>", where origin is the writing store's
// `videotask.origin` session setting.
constexpr char kPostgresV1[] = R"sql(
CREATE INDEX tasks_active ON tasks (backend) WHERE state BETWEEN 2 AND 4;

-- Images are compressed already: stored out of line without another try.
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;

-- Per-backend limits shared by every replica: ClaimQueued locks the row,
-- so claims of one backend are serialized across replicas.
CREATE TABLE backend_limits (
  backend TEXT PRIMARY KEY,
  max_concurrency INTEGER NOT NULL,
  min_submit_interval_us BIGINT NOT NULL,
  next_free_at BIGINT NOT NULL DEFAULT 0
);

CREATE FUNCTION videotask_notify_task() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.version IS DISTINCT FROM OLD.version THEN
    PERFORM pg_notify('videotask_tasks',
                      coalesce(current_setting('videotask.origin', true), '') || ' ' || NEW.id);
  END IF;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tasks_notify AFTER INSERT OR UPDATE ON tasks
  FOR EACH ROW EXECUTE FUNCTION videotask_notify_task();
)sql";

// Step i brings the database from version i to i + 1.
const std::vector<std::string>& Steps() {
  static const std::vector<std::string>* const kSteps = new std::vector<std::string>{
      absl::StrCat(internal::SchemaV1(internal::Dialect::Postgres()), kPostgresV1),
      internal::SchemaV2(internal::Dialect::Postgres()),
      internal::SchemaAttemptsAndPauses(internal::Dialect::Postgres()),
      internal::SchemaRetention(internal::Dialect::Postgres()),
      internal::SchemaCallers(internal::Dialect::Postgres()),
      internal::SchemaStateCounts(internal::Dialect::Postgres()),
      internal::SchemaListIndexes(internal::Dialect::Postgres()),
      internal::SchemaReuseKey(internal::Dialect::Postgres()),
      internal::SchemaWebhookOutbox(internal::Dialect::Postgres()),
      internal::SchemaDailySpend(internal::Dialect::Postgres()),
  };
  return *kSteps;
}

// Any constant shared by every videotaskd: the advisory lock of migrations.
constexpr int64_t kMigrationLockKey = 0x7669646561736b31;  // "videask1"

}  // namespace

int64_t LatestSchemaVersion() { return static_cast<int64_t>(Steps().size()); }

absl::Status Migrate(Connection& conn) {
  VT_RETURN_IF_ERROR(conn.Run("BEGIN"));
  auto fail = [&](absl::Status status) {
    (void)conn.Run("ROLLBACK");
    return status;
  };
  absl::StatusOr<Result> locked =
      conn.Exec("SELECT pg_advisory_xact_lock($1)", Params().Int(kMigrationLockKey));
  if (!locked.ok()) return fail(locked.status());
  absl::Status created =
      conn.Run("CREATE TABLE IF NOT EXISTS videotask_schema (version BIGINT NOT NULL)");
  if (!created.ok()) return fail(created);
  absl::StatusOr<Result> current = conn.Exec("SELECT version FROM videotask_schema");
  if (!current.ok()) return fail(current.status());
  int64_t version = 0;
  bool has_row = current->rows() > 0;
  if (has_row) version = current->Int(0, 0);
  absl::Status supported = internal::CheckSchemaVersion(version, LatestSchemaVersion());
  if (!supported.ok()) return fail(supported);
  for (int64_t v = version; v < LatestSchemaVersion(); ++v) {
    // A multi-statement script without parameters: PQexecParams takes one
    // statement, so steps run through the simple query protocol.
    PGresult* res = PQexec(conn.raw(), Steps()[static_cast<size_t>(v)].c_str());
    Result holder(res);
    if (res == nullptr || PQresultStatus(res) != PGRES_COMMAND_OK) {
      std::string message = res != nullptr ? PQresultErrorMessage(res) : "no result";
      return fail(internal::SchemaStepError(absl::InternalError(message), v + 1));
    }
  }
  absl::StatusOr<Result> set = has_row
                                   ? conn.Exec("UPDATE videotask_schema SET version = $1",
                                               Params().Int(LatestSchemaVersion()))
                                   : conn.Exec("INSERT INTO videotask_schema (version) VALUES ($1)",
                                               Params().Int(LatestSchemaVersion()));
  if (!set.ok()) return fail(set.status());
  return conn.Run("COMMIT");
}

}  // namespace videotask::store::pg
