#include "server/store/migrations.h"

#include <sqlite3.h>

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
