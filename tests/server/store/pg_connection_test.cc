// pg::Connection on a real PostgreSQL database: statements with parameters
// are prepared once per session and stay correct when the session loses
// them or the schema changes under them.
#include "server/store/postgres/pg.h"

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "server/store/dialect.h"

#include "tests/server/store/pg_test_db.h"
#include "tests/testing/status_matchers.h"

namespace videotask::store::pg {
namespace {

using ::videotask::testing::IsOk;
using ::videotask::testing::PgTestDb;

class PgConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = PgTestDb::Create();
    ASSERT_THAT(db.status(), IsOk());
    db_ = *std::move(db);
    auto conn = Connection::Open(db_->conninfo());
    ASSERT_THAT(conn.status(), IsOk());
    conn_ = std::make_unique<Connection>(*std::move(conn));
    ASSERT_THAT(conn_->Run("CREATE TABLE t (k TEXT PRIMARY KEY, n BIGINT NOT NULL)"), IsOk());
  }

  // Prepared statements of this session, as the server counts them.
  int64_t ServerSidePrepared() {
    auto r = conn_->Exec("SELECT COUNT(*) FROM pg_prepared_statements");
    EXPECT_THAT(r.status(), IsOk());
    return r.ok() ? r->Int(0, 0) : -1;
  }

  int64_t ValueOf(const std::string& key) {
    auto r = conn_->Exec("SELECT n FROM t WHERE k = $1", Params().Text(key));
    EXPECT_THAT(r.status(), IsOk());
    if (!r.ok() || r->rows() != 1) return -1;
    return r->Int(0, 0);
  }

  std::unique_ptr<PgTestDb> db_;
  std::unique_ptr<Connection> conn_;
};

TEST_F(PgConnectionTest, AStatementWithParametersIsPreparedOnceAndReused) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(conn_->Exec("INSERT INTO t (k, n) VALUES ($1, $2)",
                            Params().Text(std::to_string(i)).Int(i * 10))
                    .status(),
                IsOk());
  }
  EXPECT_EQ(ValueOf("3"), 30);
  EXPECT_EQ(ValueOf("4"), 40);
  EXPECT_EQ(conn_->prepared_count(), 2u);  // the INSERT and the SELECT
  EXPECT_EQ(ServerSidePrepared(), 2);
}

TEST_F(PgConnectionTest, StatementsWithoutParametersRunUnnamed) {
  ASSERT_THAT(conn_->Run("BEGIN"), IsOk());
  ASSERT_THAT(conn_->Run("SAVEPOINT op"), IsOk());
  ASSERT_THAT(conn_->Run("RELEASE SAVEPOINT op"), IsOk());
  ASSERT_THAT(conn_->Run("COMMIT"), IsOk());
  EXPECT_EQ(conn_->prepared_count(), 0u);
}

TEST_F(PgConnectionTest, AStatementMarkedPlanEachCallRunsUnnamed) {
  const std::string list =
      absl::StrCat(internal::kPlanEachCall, "SELECT n FROM t WHERE k = $1 ORDER BY n");
  for (int i = 0; i < 3; ++i) ASSERT_THAT(conn_->Exec(list, Params().Text("a")).status(), IsOk());
  EXPECT_EQ(conn_->prepared_count(), 0u);
  EXPECT_EQ(ServerSidePrepared(), 0);
}

TEST_F(PgConnectionTest, ErrorsKeepTheirSqlStateAndConstraint) {
  const char* insert = "INSERT INTO t (k, n) VALUES ($1, $2)";
  ASSERT_THAT(conn_->Exec(insert, Params().Text("a").Int(1)).status(), IsOk());
  absl::Status dup = conn_->Exec(insert, Params().Text("a").Int(2)).status();
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(SqlState(dup), kUniqueViolation);
  EXPECT_EQ(ConstraintOf(dup), "t_pkey");
  EXPECT_EQ(ValueOf("a"), 1);
}

TEST_F(PgConnectionTest, AStatementFirstRunInAnAbortedTransactionReportsTheAbort) {
  ASSERT_THAT(conn_->Run("BEGIN"), IsOk());
  EXPECT_FALSE(conn_->Run("SELECT 1/0").ok());
  absl::Status aborted = conn_->Exec("SELECT n FROM t WHERE k = $1", Params().Text("x")).status();
  EXPECT_EQ(SqlState(aborted), "25P02");  // in_failed_sql_transaction
  ASSERT_THAT(conn_->Run("ROLLBACK"), IsOk());
  // Not remembered as prepared: the next run prepares and answers.
  EXPECT_EQ(ValueOf("x"), -1);
  EXPECT_EQ(conn_->prepared_count(), 1u);
}

TEST_F(PgConnectionTest, AStatementPreparedInARolledBackTransactionStaysUsable) {
  ASSERT_THAT(conn_->Run("BEGIN"), IsOk());
  ASSERT_THAT(
      conn_->Exec("INSERT INTO t (k, n) VALUES ($1, $2)", Params().Text("a").Int(1)).status(),
      IsOk());
  ASSERT_THAT(conn_->Run("ROLLBACK"), IsOk());
  ASSERT_THAT(
      conn_->Exec("INSERT INTO t (k, n) VALUES ($1, $2)", Params().Text("a").Int(7)).status(),
      IsOk());
  EXPECT_EQ(ValueOf("a"), 7);
}

TEST_F(PgConnectionTest, ASessionThatLostItsStatementsPreparesThemAgain) {
  ASSERT_THAT(
      conn_->Exec("INSERT INTO t (k, n) VALUES ($1, $2)", Params().Text("a").Int(1)).status(),
      IsOk());
  EXPECT_EQ(ValueOf("a"), 1);
  ASSERT_THAT(conn_->Run("DEALLOCATE ALL"), IsOk());  // what a pooler's reset does
  EXPECT_EQ(ValueOf("a"), 1);
  EXPECT_EQ(ValueOf("a"), 1);
  ASSERT_THAT(
      conn_->Exec("INSERT INTO t (k, n) VALUES ($1, $2)", Params().Text("b").Int(2)).status(),
      IsOk());
  EXPECT_EQ(ValueOf("b"), 2);
}

TEST_F(PgConnectionTest, AStatementWhoseResultChangedShapeIsRunAgain) {
  const char* select_all = "SELECT * FROM t WHERE k = $1";
  ASSERT_THAT(
      conn_->Exec("INSERT INTO t (k, n) VALUES ($1, $2)", Params().Text("a").Int(1)).status(),
      IsOk());
  auto before = conn_->Exec(select_all, Params().Text("a"));
  ASSERT_THAT(before.status(), IsOk());
  // Another replica's migration adds a column.
  ASSERT_THAT(db_->Exec("ALTER TABLE t ADD COLUMN extra TEXT NOT NULL DEFAULT 'new'"), IsOk());
  auto after = conn_->Exec(select_all, Params().Text("a"));
  ASSERT_THAT(after.status(), IsOk());
  ASSERT_EQ(after->rows(), 1);
  EXPECT_EQ(after->Text(0, 2), "new");
}

TEST_F(PgConnectionTest, ResetForgetsThePreparedStatements) {
  EXPECT_EQ(ValueOf("a"), -1);
  EXPECT_EQ(conn_->prepared_count(), 1u);
  ASSERT_TRUE(conn_->Reset());
  EXPECT_EQ(conn_->prepared_count(), 0u);
  EXPECT_EQ(ValueOf("a"), -1);
  EXPECT_EQ(ServerSidePrepared(), 1);
}

}  // namespace
}  // namespace videotask::store::pg
