#include "server/store/postgres/pg_migrations.h"

#include <array>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace videotask::store::pg {
namespace {

// Same columns and meaning as the SQLite schema: times are BIGINT
// microseconds since the Unix epoch (NULL unset, INT64_MAX "never"),
// states follow videotask::TaskState (1..7).
//
// Every committed change of a task but lease renewals (which keep the
// version) is announced on the channel `videotask_tasks` with the payload
// "<origin> <task id>", where origin is the writing store's
// `videotask.origin` session setting.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE tasks (
  id TEXT COLLATE "C" PRIMARY KEY,
  request_id TEXT NOT NULL DEFAULT '',
  backend TEXT NOT NULL,
  model TEXT NOT NULL,
  image_source INTEGER NOT NULL,
  image_uri TEXT NOT NULL,
  image_server_path TEXT NOT NULL,
  image_filename TEXT NOT NULL,
  image_mime_type TEXT NOT NULL,
  prompt_text TEXT NOT NULL,
  ratio TEXT NOT NULL,
  duration_seconds INTEGER NOT NULL,
  seed BIGINT,
  requested_stub TEXT NOT NULL,
  labels_json TEXT,
  priority INTEGER NOT NULL,
  public_figure_threshold TEXT NOT NULL,
  state INTEGER NOT NULL CHECK (state BETWEEN 1 AND 7),
  provider_task_id TEXT NOT NULL,
  provider_status TEXT NOT NULL,
  progress DOUBLE PRECISION NOT NULL,
  target_filename_stub TEXT COLLATE "C" NOT NULL,
  output_path TEXT NOT NULL,
  output_size_bytes BIGINT NOT NULL,
  output_sha256 TEXT NOT NULL,
  error_code TEXT NOT NULL,
  error_message TEXT NOT NULL,
  error_retryable INTEGER NOT NULL,
  error_provider_code TEXT NOT NULL,
  attempt_count INTEGER NOT NULL,
  image_sha256 TEXT NOT NULL,
  image_size_bytes BIGINT NOT NULL,
  create_time BIGINT NOT NULL,
  update_time BIGINT,
  start_time BIGINT,
  end_time BIGINT,
  next_attempt_time BIGINT,
  lease_owner TEXT NOT NULL DEFAULT '',
  lease_expiry BIGINT,
  provider_cancel_pending INTEGER NOT NULL DEFAULT 0,
  output_urls_json TEXT,
  spec_fingerprint TEXT NOT NULL,
  version BIGINT NOT NULL
);
CREATE UNIQUE INDEX tasks_request_id ON tasks (request_id) WHERE request_id <> '';
CREATE UNIQUE INDEX tasks_stub ON tasks (target_filename_stub);
CREATE INDEX tasks_list ON tasks (create_time DESC, id DESC);
CREATE INDEX tasks_state_list ON tasks (state, create_time DESC, id DESC);
CREATE INDEX tasks_claim ON tasks (backend, priority DESC, create_time, id) WHERE state = 1;
CREATE INDEX tasks_live_image ON tasks (image_sha256)
  WHERE image_sha256 <> '' AND state BETWEEN 1 AND 4;
CREATE INDEX tasks_queued_next ON tasks (backend, next_attempt_time NULLS FIRST) WHERE state = 1;
CREATE INDEX tasks_active ON tasks (backend) WHERE state BETWEEN 2 AND 4;
CREATE INDEX tasks_leased ON tasks (lease_owner) WHERE lease_owner <> '';
CREATE INDEX tasks_recoverable ON tasks (create_time, id)
  WHERE state BETWEEN 2 AND 4 OR (state = 7 AND provider_cancel_pending = 1);

CREATE TABLE task_labels (
  task_id TEXT COLLATE "C" NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (task_id, key)
);
CREATE INDEX task_labels_by_value ON task_labels (key, value, task_id);

-- Images are compressed already: stored out of line without another try.
CREATE TABLE blobs (
  sha256 TEXT PRIMARY KEY,
  data BYTEA NOT NULL
);
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE stub_counters (
  base TEXT PRIMARY KEY,
  next BIGINT NOT NULL
);

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

constexpr std::array<const char*, 1> kSteps = {kSchemaV1};

// Any constant shared by every videotaskd: the advisory lock of migrations.
constexpr int64_t kMigrationLockKey = 0x7669646561736b31;  // "videask1"

}  // namespace

int64_t LatestSchemaVersion() { return static_cast<int64_t>(kSteps.size()); }

absl::Status Migrate(Connection& conn) {
  VT_RETURN_IF_ERROR(conn.Run("BEGIN"));
  auto fail = [&](absl::Status status) {
    (void)conn.Run("ROLLBACK");
    return status;
  };
  absl::StatusOr<Result> locked =
      conn.Exec("SELECT pg_advisory_xact_lock($1)", Params().Int(kMigrationLockKey));
  if (!locked.ok()) return fail(locked.status());
  absl::Status created = conn.Run(
      "CREATE TABLE IF NOT EXISTS videotask_schema (version BIGINT NOT NULL)");
  if (!created.ok()) return fail(created);
  absl::StatusOr<Result> current = conn.Exec("SELECT version FROM videotask_schema");
  if (!current.ok()) return fail(current.status());
  int64_t version = 0;
  bool has_row = current->rows() > 0;
  if (has_row) version = current->Int(0, 0);
  if (version > LatestSchemaVersion()) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat("task database schema v", version, " is newer than this binary (v",
                     LatestSchemaVersion(), "); use a newer videotaskd")));
  }
  if (version < 0) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat("task database has an invalid schema version ", version)));
  }
  for (int64_t v = version; v < LatestSchemaVersion(); ++v) {
    // A multi-statement script without parameters: PQexecParams takes one
    // statement, so steps run through the simple query protocol.
    PGresult* res = PQexec(conn.raw(), kSteps[static_cast<size_t>(v)]);
    Result holder(res);
    if (res == nullptr || PQresultStatus(res) != PGRES_COMMAND_OK) {
      std::string message = res != nullptr ? PQresultErrorMessage(res) : "no result";
      return fail(absl::InternalError(absl::StrCat("schema step to v", v + 1, ": ", message)));
    }
  }
  absl::StatusOr<Result> set =
      has_row ? conn.Exec("UPDATE videotask_schema SET version = $1",
                          Params().Int(LatestSchemaVersion()))
              : conn.Exec("INSERT INTO videotask_schema (version) VALUES ($1)",
                          Params().Int(LatestSchemaVersion()));
  if (!set.ok()) return fail(set.status());
  return conn.Run("COMMIT");
}

}  // namespace videotask::store::pg
