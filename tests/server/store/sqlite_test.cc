#include "server/store/sqlite/sqlite.h"

#include <sqlite3.h>

#include <string>
#include <utility>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace videotask::store::sqlite {
namespace {

using ::testing::HasSubstr;
using ::videotask::testing::IsOk;
using ::videotask::testing::StatusIs;

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    VT_ASSERT_OK_AND_ASSIGN(
        db_, Database::Open(tmp_.path() + "/t.db", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
    VT_ASSERT_OK(db_->ExecScript(
        "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL CHECK (v >= 0), b BLOB)"));
  }

  int64_t Count() {
    auto n = db_->QueryInt64("SELECT COUNT(*) FROM t");
    EXPECT_THAT(n, IsOk());
    return n.ok() ? *n : -1;
  }

  ::videotask::testing::TempDir tmp_;
  std::optional<Database> db_;
};

TEST_F(SqliteTest, BindStepAndColumns) {
  {
    VT_ASSERT_OK_AND_ASSIGN(Query insert, db_->Prepare("INSERT INTO t (k, v, b) VALUES (?1, ?2, ?3)"));
    VT_ASSERT_OK(insert->BindText(1, "a"));
    VT_ASSERT_OK(insert->BindInt64(2, int64_t{1} << 40));
    VT_ASSERT_OK(insert->BindBlob(3, std::string("x\0y", 3)));
    VT_ASSERT_OK(insert->Run());
  }
  VT_ASSERT_OK_AND_ASSIGN(Query select, db_->Prepare("SELECT k, v, b, NULL FROM t WHERE k = ?1"));
  VT_ASSERT_OK(select->BindText(1, "a"));
  VT_ASSERT_OK_AND_ASSIGN(bool row, select->Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(select->ColumnText(0), "a");
  EXPECT_EQ(select->ColumnInt64(1), int64_t{1} << 40);
  EXPECT_EQ(select->ColumnBlob(2), std::string("x\0y", 3));
  EXPECT_TRUE(select->ColumnIsNull(3));
  VT_ASSERT_OK_AND_ASSIGN(row, select->Step());
  EXPECT_FALSE(row);
}

TEST_F(SqliteTest, StatementsAreCachedAndResetAfterUse) {
  constexpr char kSql[] = "SELECT v FROM t WHERE k = ?1";
  VT_ASSERT_OK(db_->Exec("INSERT INTO t (k, v) VALUES ('a', 1), ('b', 2)"));
  size_t before = db_->CachedStatements();
  for (int i = 0; i < 3; ++i) {
    VT_ASSERT_OK_AND_ASSIGN(Query q, db_->Prepare(kSql));
    VT_ASSERT_OK(q->BindText(1, i % 2 == 0 ? "a" : "b"));
    VT_ASSERT_OK_AND_ASSIGN(bool row, q->Step());
    ASSERT_TRUE(row);
    EXPECT_EQ(q->ColumnInt64(0), i % 2 == 0 ? 1 : 2);
  }
  EXPECT_EQ(db_->CachedStatements(), before + 1);
  // Lending the same statement twice at once is refused, not corrupted.
  VT_ASSERT_OK_AND_ASSIGN(Query first, db_->Prepare(kSql));
  EXPECT_THAT(db_->Prepare(kSql), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(kSql)));
}

TEST_F(SqliteTest, ErrorsMapToStatusCodes) {
  VT_ASSERT_OK(db_->Exec("INSERT INTO t (k, v) VALUES ('a', 1)"));
  EXPECT_THAT(db_->Exec("INSERT INTO t (k, v) VALUES ('a', 2)"),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("UNIQUE")));
  EXPECT_THAT(db_->Exec("INSERT INTO t (k, v) VALUES ('b', -1)"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("CHECK")));
  EXPECT_THAT(db_->Prepare("SELECT nope FROM t"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("no such column")));
  EXPECT_THAT(db_->QueryInt64("SELECT v FROM t WHERE k = 'zz'"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no row")));
}

TEST_F(SqliteTest, BusyIsUnavailable) {
  VT_ASSERT_OK_AND_ASSIGN(Database other, Database::Open(tmp_.path() + "/t.db", SQLITE_OPEN_READWRITE));
  VT_ASSERT_OK_AND_ASSIGN(Transaction tx, Transaction::Begin(*db_, Transaction::Mode::kImmediate));
  EXPECT_THAT(Transaction::Begin(other, Transaction::Mode::kImmediate),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("locked")));
}

TEST_F(SqliteTest, TransactionRollsBackUnlessCommitted) {
  {
    VT_ASSERT_OK_AND_ASSIGN(Transaction tx, Transaction::Begin(*db_, Transaction::Mode::kImmediate));
    VT_ASSERT_OK(db_->Exec("INSERT INTO t (k, v) VALUES ('a', 1)"));
    EXPECT_FALSE(db_->InAutocommit());
  }
  EXPECT_TRUE(db_->InAutocommit());
  EXPECT_EQ(Count(), 0);
  {
    VT_ASSERT_OK_AND_ASSIGN(Transaction tx, Transaction::Begin(*db_, Transaction::Mode::kDeferred));
    VT_ASSERT_OK(db_->Exec("INSERT INTO t (k, v) VALUES ('a', 1)"));
    VT_ASSERT_OK(tx.Commit());
    EXPECT_THAT(tx.Commit(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("ended")));
  }
  EXPECT_EQ(Count(), 1);
}

TEST_F(SqliteTest, DatabaseMovesKeepStatements) {
  VT_ASSERT_OK(db_->Exec("INSERT INTO t (k, v) VALUES ('a', 7)"));
  Database moved = std::move(*db_);
  db_.reset();
  VT_ASSERT_OK_AND_ASSIGN(int64_t v, moved.QueryInt64("SELECT v FROM t"));
  EXPECT_EQ(v, 7);
}

// How many times SQLite prepared a statement again while it was stepped
// with new bindings. Its `state = ?1` is compared with the partial index's
// WHERE, as in the store's task queries.
int RepreparesOverBindings(sqlite3* db) {
  const char* script =
      "CREATE TABLE r (state INTEGER NOT NULL, at INTEGER NOT NULL);"
      "CREATE INDEX r_state ON r (state, at);"
      "CREATE INDEX r_queued ON r (at) WHERE state = 1;"
      "INSERT INTO r VALUES (1, 10), (7, 20), (1, 30), (2, 40);";
  EXPECT_EQ(sqlite3_exec(db, script, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v3(db, "SELECT at FROM r WHERE state = ?1 AND at < ?2 LIMIT 5", -1,
                               SQLITE_PREPARE_PERSISTENT, &stmt, nullptr),
            SQLITE_OK);
  for (int page = 0; page < 10; ++page) {
    sqlite3_bind_int(stmt, 1, 7);
    sqlite3_bind_int(stmt, 2, 100 - page);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
    }
    sqlite3_reset(stmt);
  }
  const int reprepares = sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_REPREPARE, 0);
  sqlite3_finalize(stmt);
  return reprepares;
}

TEST(SqliteOpenTest, CachedStatementsAreNotPreparedAgainForNewBindings) {
  ::videotask::testing::TempDir tmp;
  VT_ASSERT_OK_AND_ASSIGN(
      Database db, Database::Open(tmp.path() + "/q.db", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  EXPECT_EQ(RepreparesOverBindings(db.handle()), 0);
  // The same on a connection opened without Database::Open's settings:
  // SQLite decides whether the partial index fits by the bound value, so
  // each new binding makes it prepare the statement again.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2((tmp.path() + "/raw.db").c_str(), &raw,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
            SQLITE_OK);
  EXPECT_GE(RepreparesOverBindings(raw), 9);
  sqlite3_close(raw);
}

// SQLite's memory statistics take one process-wide mutex on every
// allocation and free; Database::Open turns them off before the first
// connection. With them on, an open connection that ran statements has
// bytes counted here.
TEST(SqliteOpenTest, AllocationsAreNotCountedUnderAProcessWideLock) {
  ::videotask::testing::TempDir tmp;
  VT_ASSERT_OK_AND_ASSIGN(
      Database db, Database::Open(tmp.path() + "/m.db", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  VT_ASSERT_OK(db.Exec("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)"));
  for (int i = 0; i < 100; ++i) {
    VT_ASSERT_OK(db.Exec(absl::StrCat("INSERT INTO t VALUES ('k", i, "', '", std::string(500, 'v'),
                                      "')")));
  }
  EXPECT_EQ(sqlite3_memory_used(), 0);
}

TEST(SqliteOpenTest, MissingFileWithoutCreateFails) {
  ::videotask::testing::TempDir tmp;
  EXPECT_THAT(Database::Open(tmp.path() + "/nope/x.db", SQLITE_OPEN_READWRITE),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("open")));
}

}  // namespace
}  // namespace videotask::store::sqlite
