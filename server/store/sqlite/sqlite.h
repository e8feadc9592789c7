// A small RAII layer over the SQLite C API: Database (one connection),
// Statement (one prepared statement), Query (a borrowed, cached statement
// that resets itself) and Transaction (rolls back unless committed).
//
// A connection and everything prepared on it must be used by one thread at
// a time; the callers own that rule (one writer thread, a pool of readers).
// Errors are absl::Status values carrying sqlite3_errmsg and the extended
// result code.
#ifndef VIDEOTASK_SERVER_STORE_SQLITE_SQLITE_H_
#define VIDEOTASK_SERVER_STORE_SQLITE_SQLITE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;
struct sqlite3_stmt;

namespace videotask::store::sqlite {

// Maps an SQLite result code to a status: BUSY/LOCKED -> UNAVAILABLE,
// FULL -> RESOURCE_EXHAUSTED, UNIQUE/PRIMARY KEY constraints ->
// ALREADY_EXISTS, other constraints -> FAILED_PRECONDITION, the rest
// INTERNAL. `db` may be null (then only the code's description is used).
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view context);

// One prepared statement. Neither copyable nor movable, so a pointer to it
// stays valid while its Database lives. Parameters are numbered from 1
// (`?1`, `?2`, ...); columns from 0.
class Statement {
 public:
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  absl::Status BindNull(int index);
  absl::Status BindInt64(int index, int64_t value);
  absl::Status BindDouble(int index, double value);
  absl::Status BindText(int index, absl::string_view value);  // copied
  absl::Status BindBlob(int index, absl::string_view value);  // copied

  // True when a row is ready, false when the statement is done.
  absl::StatusOr<bool> Step();
  // Steps to the end, for statements that return no rows of interest.
  absl::Status Run();

  bool ColumnIsNull(int column) const;
  int64_t ColumnInt64(int column) const;
  double ColumnDouble(int column) const;
  std::string ColumnText(int column) const;
  std::string ColumnBlob(int column) const;

  // Ends the current execution and clears the bindings.
  void Reset();

  const std::string& sql() const { return sql_; }

 private:
  friend class Database;
  friend class Query;
  Statement(sqlite3* db, sqlite3_stmt* stmt, std::string sql)
      : db_(db), stmt_(stmt), sql_(std::move(sql)) {}
  absl::Status BindResult(int rc, int index);

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  std::string sql_;
  bool in_use_ = false;  // lent out through a Query
};

// A cached statement lent for one execution; resets it (ending any read
// snapshot it holds) and clears its bindings when destroyed. Move-only.
class Query {
 public:
  Query(Query&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  Query& operator=(Query&&) = delete;
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query();

  Statement* operator->() const { return stmt_; }
  Statement& operator*() const { return *stmt_; }

 private:
  friend class Database;
  explicit Query(Statement* stmt) : stmt_(stmt) {}
  Statement* stmt_;
};

// One connection. Move-only; closes the connection (and its cached
// statements) when destroyed.
class Database {
 public:
  // `flags` are sqlite3_open_v2 flags (SQLITE_OPEN_READWRITE | ...). Plans
  // do not depend on bound values (SQLITE_DBCONFIG_ENABLE_QPSG), so cached
  // statements are not prepared again when they are bound anew.
  static absl::StatusOr<Database> Open(const std::string& path, int flags);

  Database(Database&&) noexcept;
  Database& operator=(Database&&) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // The statement for `sql`, prepared once per connection and cached by
  // its text. FAILED_PRECONDITION when that statement is already lent out.
  absl::StatusOr<Query> Prepare(absl::string_view sql);
  // Runs one statement (cached) to its end.
  absl::Status Exec(absl::string_view sql);
  // Runs a script of several statements (not cached; migrations).
  absl::Status ExecScript(const std::string& sql);
  // First column of the first row of `sql` as an integer; NOT_FOUND when
  // there is no row.
  absl::StatusOr<int64_t> QueryInt64(absl::string_view sql);
  absl::StatusOr<std::string> QueryText(absl::string_view sql);

  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const;
  // False while a transaction is open.
  bool InAutocommit() const;
  // Number of statements in the cache.
  size_t CachedStatements() const;

  sqlite3* handle() const;

 private:
  struct Impl;
  explicit Database(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// BEGIN [IMMEDIATE]; rolls back in the destructor unless Commit() ran.
class Transaction {
 public:
  enum class Mode { kDeferred, kImmediate };
  // `db` is borrowed and must outlive the transaction.
  static absl::StatusOr<Transaction> Begin(Database& db, Mode mode);

  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  absl::Status Commit();
  // Explicit rollback; the destructor then does nothing.
  absl::Status Rollback();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;  // null once committed or rolled back
};

}  // namespace videotask::store::sqlite

#endif  // VIDEOTASK_SERVER_STORE_SQLITE_SQLITE_H_
