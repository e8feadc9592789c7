#include "server/store/migrations.h"

#include <array>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace videotask::store {
namespace {

// Times are INTEGER microseconds since the Unix epoch, NULL when unset.
// States follow videotask::TaskState (1..7). labels_json and
// output_urls_json are JSON (NULL when empty); task_labels mirrors the
// labels for filtering.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE tasks (
  id TEXT PRIMARY KEY NOT NULL,
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
  seed INTEGER,
  requested_stub TEXT NOT NULL,
  labels_json TEXT,
  priority INTEGER NOT NULL,
  public_figure_threshold TEXT NOT NULL,
  state INTEGER NOT NULL CHECK (state BETWEEN 1 AND 7),
  provider_task_id TEXT NOT NULL,
  provider_status TEXT NOT NULL,
  progress REAL NOT NULL,
  target_filename_stub TEXT NOT NULL,
  output_path TEXT NOT NULL,
  output_size_bytes INTEGER NOT NULL,
  output_sha256 TEXT NOT NULL,
  error_code TEXT NOT NULL,
  error_message TEXT NOT NULL,
  error_retryable INTEGER NOT NULL,
  error_provider_code TEXT NOT NULL,
  attempt_count INTEGER NOT NULL,
  image_sha256 TEXT NOT NULL,
  image_size_bytes INTEGER NOT NULL,
  create_time INTEGER NOT NULL,
  update_time INTEGER,
  start_time INTEGER,
  end_time INTEGER,
  next_attempt_time INTEGER,
  lease_owner TEXT NOT NULL DEFAULT '',
  lease_expiry INTEGER,
  provider_cancel_pending INTEGER NOT NULL DEFAULT 0,
  output_urls_json TEXT,
  spec_fingerprint TEXT NOT NULL,
  version INTEGER NOT NULL
);
CREATE UNIQUE INDEX tasks_request_id ON tasks (request_id) WHERE request_id <> '';
CREATE UNIQUE INDEX tasks_stub ON tasks (target_filename_stub);
CREATE INDEX tasks_list ON tasks (create_time DESC, id DESC);
CREATE INDEX tasks_state_list ON tasks (state, create_time DESC, id DESC);
CREATE INDEX tasks_claim ON tasks (backend, priority DESC, create_time, id) WHERE state = 1;
CREATE INDEX tasks_live_image ON tasks (image_sha256)
  WHERE image_sha256 <> '' AND state BETWEEN 1 AND 4;
CREATE INDEX tasks_queued_next ON tasks (backend, next_attempt_time) WHERE state = 1;
CREATE INDEX tasks_leased ON tasks (lease_owner) WHERE lease_owner <> '';
CREATE INDEX tasks_recoverable ON tasks (create_time, id)
  WHERE state BETWEEN 2 AND 4 OR (state = 7 AND provider_cancel_pending = 1);

CREATE TABLE task_labels (
  task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (task_id, key)
) WITHOUT ROWID;
CREATE INDEX task_labels_by_value ON task_labels (key, value, task_id);

CREATE TABLE blobs (
  sha256 TEXT PRIMARY KEY NOT NULL,
  data BLOB NOT NULL
);

CREATE TABLE stub_counters (
  base TEXT PRIMARY KEY NOT NULL,
  next INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

constexpr std::array<const char*, 1> kSteps = {kSchemaV1};

}  // namespace

int64_t LatestSchemaVersion() { return static_cast<int64_t>(kSteps.size()); }

absl::Status Migrate(sqlite::Database& db) {
  VT_ASSIGN_OR_RETURN(int64_t version, db.QueryInt64("PRAGMA user_version"));
  if (version > LatestSchemaVersion()) {
    return absl::FailedPreconditionError(
        absl::StrCat("task database schema v", version, " is newer than this binary (v",
                     LatestSchemaVersion(), "); use a newer videotaskd"));
  }
  if (version < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("task database has an invalid schema version ", version));
  }
  for (; version < LatestSchemaVersion(); ++version) {
    VT_ASSIGN_OR_RETURN(sqlite::Transaction tx,
                        sqlite::Transaction::Begin(db, sqlite::Transaction::Mode::kImmediate));
    absl::Status step = db.ExecScript(kSteps[static_cast<size_t>(version)]);
    if (!step.ok()) {
      return absl::Status(step.code(), absl::StrCat("schema step to v", version + 1, ": ",
                                                    step.message()));
    }
    VT_RETURN_IF_ERROR(db.ExecScript(absl::StrCat("PRAGMA user_version = ", version + 1)));
    VT_RETURN_IF_ERROR(tx.Commit());
  }
  return absl::OkStatus();
}

}  // namespace videotask::store
