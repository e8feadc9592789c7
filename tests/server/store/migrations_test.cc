#include "server/store/sqlite/sqlite_migrations.h"

#include <sqlite3.h>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "server/store/sqlite/sqlite.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace videotask::store {
namespace {

using ::testing::HasSubstr;
using ::videotask::testing::StatusIs;

constexpr int kFlags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

TEST(MigrationsTest, MigratesAnEmptyFileToTheLatestVersion) {
  ::videotask::testing::TempDir tmp;
  VT_ASSERT_OK_AND_ASSIGN(sqlite::Database db, sqlite::Database::Open(tmp.path() + "/m.db", kFlags));
  VT_ASSERT_OK_AND_ASSIGN(int64_t before, db.QueryInt64("PRAGMA user_version"));
  EXPECT_EQ(before, 0);
  VT_ASSERT_OK(Migrate(db));
  VT_ASSERT_OK_AND_ASSIGN(int64_t after, db.QueryInt64("PRAGMA user_version"));
  EXPECT_EQ(after, LatestSchemaVersion());
  for (const char* table : {"tasks", "task_labels", "blobs", "stub_counters"}) {
    VT_ASSERT_OK_AND_ASSIGN(
        int64_t n, db.QueryInt64(std::string("SELECT COUNT(*) FROM sqlite_master WHERE type = "
                                             "'table' AND name = '") +
                                 table + "'"));
    EXPECT_EQ(n, 1) << table;
  }
  // Idempotent: a second run changes nothing.
  VT_ASSERT_OK(Migrate(db));
  // The state CHECK constraint is in place.
  EXPECT_THAT(db.Exec("INSERT INTO tasks (id, backend, model, image_source, image_uri, "
                      "image_server_path, image_filename, image_mime_type, prompt_text, ratio, "
                      "duration_seconds, requested_stub, priority, public_figure_threshold, "
                      "state, provider_task_id, provider_status, progress, target_filename_stub, "
                      "output_path, output_size_bytes, output_sha256, error_code, error_message, "
                      "error_retryable, error_provider_code, attempt_count, image_sha256, "
                      "image_size_bytes, create_time, spec_fingerprint, version) VALUES ('x', "
                      "'', '', 0, '', '', '', '', '', '', 0, '', 0, '', 8, '', '', 0, 'x', '', "
                      "0, '', '', '', 0, '', 0, '', 0, 0, '', 1)"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("CHECK")));
}

// A QUEUED task in the columns of schema v1, created at 1234 µs.
constexpr char kInsertV1Task[] =
    "INSERT INTO tasks (id, backend, model, image_source, image_uri, image_server_path, "
    "image_filename, image_mime_type, prompt_text, ratio, duration_seconds, requested_stub, "
    "priority, public_figure_threshold, state, provider_task_id, provider_status, progress, "
    "target_filename_stub, output_path, output_size_bytes, output_sha256, error_code, "
    "error_message, error_retryable, error_provider_code, attempt_count, image_sha256, "
    "image_size_bytes, create_time, spec_fingerprint, version) VALUES ('x', 'mock', '', 0, '', "
    "'', '', '', '', '', 0, '', 0, '', 1, '', '', 0, 'x', '', 0, '', '', '', 0, '', 0, '', 0, "
    "1234, '', 1)";

// Schema v1 as the binaries before the shared schema description wrote it
// (migrations.cc, verbatim): databases made by them must stay the same.
constexpr char kPreviousSchemaV1[] = R"sql(
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

// Every table and index with its CREATE statement, as SQLite keeps them.
std::vector<std::string> SchemaObjects(sqlite::Database& db) {
  std::vector<std::string> out;
  absl::StatusOr<sqlite::Query> query = db.Prepare(
      "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
      "ORDER BY name");
  if (!query.ok()) {
    ADD_FAILURE() << query.status();
    return out;
  }
  while (true) {
    absl::StatusOr<bool> row = (*query)->Step();
    if (!row.ok() || !*row) break;
    out.push_back(absl::StrCat((*query)->ColumnText(0), " ", (*query)->ColumnText(1), " ",
                               (*query)->ColumnText(2), ": ", (*query)->ColumnText(3)));
  }
  return out;
}

TEST(MigrationsTest, V1IsTheSchemaEarlierBinariesCreatedAndMigratesToTheLatest) {
  ::videotask::testing::TempDir tmp;
  VT_ASSERT_OK_AND_ASSIGN(sqlite::Database before,
                          sqlite::Database::Open(tmp.path() + "/before.db", kFlags));
  VT_ASSERT_OK(before.ExecScript(kPreviousSchemaV1));
  VT_ASSERT_OK(before.ExecScript("PRAGMA user_version = 1"));
  VT_ASSERT_OK_AND_ASSIGN(sqlite::Database now,
                          sqlite::Database::Open(tmp.path() + "/now.db", kFlags));
  VT_ASSERT_OK(Migrate(now));
  const std::vector<std::string> v1 = SchemaObjects(before);
  EXPECT_EQ(v1.size(), 14u);  // 4 tables, 10 indexes
  const std::vector<std::string> latest = SchemaObjects(now);
  // Later steps add tasks.model_options_json, tasks.attempts_json,
  // tasks.output_removed_time and tasks.caller, the table backend_pauses,
  // replace the index tasks_live_image by tasks_kept_image (images kept for
  // retries), add the retention indexes tasks_ended and tasks_output_kept and
  // four tasks_caller_* indexes, drop tasks_claim, add the state counts
  // (SchemaStateCounts: their table and three triggers), and add
  // task_labels.create_time with the list indexes tasks_backend_list and
  // task_labels_list (replacing task_labels_by_value), tasks.reuse_key and
  // tasks.reused_from with the indexes tasks_reuse_key and tasks_followers,
  // tasks.notify_url, tasks.notify_events_json and the webhook outbox
  // (SchemaWebhookOutbox: its table and two indexes), and
  // tasks.estimated_cost_micros with the table daily_spend
  // (SchemaDailySpend); nothing else.
  std::vector<std::string> expected_v1;
  int caller_indexes = 0;
  int state_count_objects = 0;
  int list_indexes = 0;
  int reuse_indexes = 0;
  int outbox_objects = 0;
  for (const std::string& object : latest) {
    if (object.find("webhook_outbox") != std::string::npos) {
      ++outbox_objects;
      continue;
    }
    if (object.rfind("index tasks_backend_list ", 0) == 0 ||
        object.rfind("index task_labels_list ", 0) == 0) {
      ++list_indexes;
      continue;
    }
    if (object.find(" task_state_counts ") != std::string::npos ||
        object.rfind("trigger tasks_count_", 0) == 0) {
      ++state_count_objects;
      continue;
    }
    if (object.rfind("table backend_pauses ", 0) == 0) continue;
    if (object.rfind("table daily_spend ", 0) == 0) continue;
    if (object.rfind("index sqlite_autoindex_backend_pauses", 0) == 0) continue;
    if (object.rfind("index tasks_ended ", 0) == 0) continue;
    if (object.rfind("index tasks_output_kept ", 0) == 0) continue;
    if (object.rfind("index tasks_caller_", 0) == 0) {
      ++caller_indexes;
      continue;
    }
    if (object.rfind("index tasks_kept_image ", 0) == 0) {
      EXPECT_THAT(object, ::testing::HasSubstr("state <> 5"));
      continue;
    }
    if (object.rfind("index tasks_reuse_key ", 0) == 0 ||
        object.rfind("index tasks_followers ", 0) == 0) {
      ++reuse_indexes;
      continue;
    }
    expected_v1.push_back(object);
  }
  EXPECT_EQ(caller_indexes, 4);
  EXPECT_EQ(state_count_objects, 4);
  EXPECT_EQ(list_indexes, 2);
  EXPECT_EQ(reuse_indexes, 2);
  EXPECT_EQ(outbox_objects, 3);
  std::vector<std::string> v1_kept;
  for (const std::string& object : v1) {
    if (object.rfind("index tasks_live_image ", 0) == 0) continue;
    if (object.rfind("index tasks_claim ", 0) == 0) continue;
    if (object.rfind("index task_labels_by_value ", 0) == 0) continue;
    v1_kept.push_back(object);
  }
  ASSERT_EQ(v1_kept.size(), v1.size() - 3);
  ASSERT_EQ(expected_v1.size(), v1_kept.size());
  for (size_t i = 0; i < v1_kept.size(); ++i) {
    if (v1_kept[i].rfind("table tasks ", 0) == 0) {
      EXPECT_THAT(expected_v1[i], ::testing::HasSubstr("model_options_json TEXT"));
      EXPECT_THAT(expected_v1[i], ::testing::HasSubstr("attempts_json TEXT"));
      EXPECT_THAT(expected_v1[i], ::testing::HasSubstr("output_removed_time INTEGER"));
      EXPECT_THAT(expected_v1[i],
                  ::testing::HasSubstr("caller TEXT NOT NULL DEFAULT 'anonymous'"));
      EXPECT_THAT(expected_v1[i],
                  ::testing::HasSubstr("estimated_cost_micros INTEGER NOT NULL DEFAULT 0"));
      EXPECT_THAT(expected_v1[i], ::testing::HasSubstr("notify_url TEXT NOT NULL DEFAULT ''"));
      EXPECT_THAT(expected_v1[i], ::testing::HasSubstr("notify_events_json TEXT"));
      EXPECT_THAT(expected_v1[i], ::testing::HasSubstr("reuse_key TEXT NOT NULL DEFAULT ''"));
      EXPECT_THAT(expected_v1[i], ::testing::HasSubstr("reused_from TEXT NOT NULL DEFAULT ''"));
    } else if (v1_kept[i].rfind("table task_labels ", 0) == 0) {
      EXPECT_THAT(expected_v1[i],
                  ::testing::HasSubstr("create_time INTEGER NOT NULL DEFAULT 0"));
    } else {
      EXPECT_EQ(expected_v1[i], v1_kept[i]);
    }
  }
  // An existing v1 file migrates to exactly what a new file gets; the
  // labels of its tasks get their task's create_time.
  VT_ASSERT_OK(before.Exec(kInsertV1Task));
  VT_ASSERT_OK(before.Exec("INSERT INTO task_labels (task_id, key, value) VALUES ('x', 'team', 'a')"));
  VT_ASSERT_OK(Migrate(before));
  EXPECT_EQ(SchemaObjects(before), latest);
  VT_ASSERT_OK_AND_ASSIGN(int64_t version, before.QueryInt64("PRAGMA user_version"));
  EXPECT_EQ(version, LatestSchemaVersion());
  VT_ASSERT_OK_AND_ASSIGN(int64_t label_time,
                          before.QueryInt64("SELECT create_time FROM task_labels WHERE task_id = 'x'"));
  EXPECT_EQ(label_time, 1234);
}

TEST(MigrationsTest, RefusesANewerSchema) {
  ::videotask::testing::TempDir tmp;
  VT_ASSERT_OK_AND_ASSIGN(sqlite::Database db, sqlite::Database::Open(tmp.path() + "/m.db", kFlags));
  VT_ASSERT_OK(db.ExecScript("PRAGMA user_version = 99"));
  EXPECT_THAT(Migrate(db), StatusIs(absl::StatusCode::kFailedPrecondition,
                                    HasSubstr("v99 is newer than this binary")));
}

TEST(MigrationsTest, FailedStepLeavesVersionUnchanged) {
  ::videotask::testing::TempDir tmp;
  VT_ASSERT_OK_AND_ASSIGN(sqlite::Database db, sqlite::Database::Open(tmp.path() + "/m.db", kFlags));
  VT_ASSERT_OK(db.ExecScript("CREATE TABLE tasks (x INTEGER)"));  // in the way of v1
  EXPECT_THAT(Migrate(db), StatusIs(absl::StatusCode::kInternal, HasSubstr("v1")));
  VT_ASSERT_OK_AND_ASSIGN(int64_t version, db.QueryInt64("PRAGMA user_version"));
  EXPECT_EQ(version, 0);
  EXPECT_TRUE(db.InAutocommit());
}

}  // namespace
}  // namespace videotask::store
