// What differs in the SQL text of the store engines: placeholders, type
// casts, column types and a few spellings. Statements and the schema are
// written once (task_sql.h, schema.h) and rendered through a Dialect.
#ifndef VIDEOTASK_SERVER_STORE_DIALECT_H_
#define VIDEOTASK_SERVER_STORE_DIALECT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace videotask::store::internal {

// Starts a statement whose best plan depends on its values (ListTasks:
// a rare state or caller wants its index range, a common one the list
// order). An engine that keeps plans across calls (PostgreSQL's prepared
// statements, pg.h) plans such a statement on every call instead. A
// comment, so every engine accepts it.
inline constexpr char kPlanEachCall[] = "/* plan each call */ ";

// Logical column types of the schema description.
enum class SqlType {
  kText,    // TEXT
  kKey,     // TEXT compared bytewise (ids, stubs): COLLATE "C" where needed
  kInt,     // 32-bit range
  kBigInt,  // 64-bit (times, sizes, versions)
  kReal,    // double
  kBlob,    // bytes
};

class Dialect {
 public:
  enum class Kind { kSqlite, kPostgres };

  static const Dialect& Sqlite();
  static const Dialect& Postgres();

  Kind kind() const { return kind_; }

  // Placeholder `n` (1-based): "?3" or "$3". `cast` names the SQL type for
  // engines that must be told a parameter's type ("$3::bigint"); SQLite
  // ignores it.
  std::string Param(int n, absl::string_view cast = "") const;

  // Array parameters ("$1::text[]", `= ANY(...)`); without them a list is
  // spelled out as one parameter per value.
  bool has_arrays() const { return kind_ == Kind::kPostgres; }

  // The column type for `type` in CREATE TABLE.
  absl::string_view ColumnType(SqlType type) const;

  // `table` held to `index` where the engine allows naming one (SQLite's
  // INDEXED BY: preparing fails if the index cannot serve the statement);
  // PostgreSQL has no such clause and plans on its own statistics.
  std::string IndexedBy(absl::string_view table, absl::string_view index) const;

  // " RETURNING <columns>" for a hot single-row UPDATE, where the engine
  // hands the changed row back cheaply; "" on SQLite, which first copies
  // returned rows into a temporary b-tree (opened, filled and freed per
  // statement), so reading the row back after the UPDATE costs less there
  // (TaskStatements::read_back).
  std::string ReturningRow(absl::string_view columns) const;

  // A row-value comparison `(create_time, id) < (time, id)` that the
  // engine's planner turns into an index range; the columns may be named
  // (`l.create_time`, `l.task_id`).
  std::string RowBefore(int time_param, int id_param,
                        absl::string_view time_column = "create_time",
                        absl::string_view id_column = "id") const;

 private:
  explicit Dialect(Kind kind) : kind_(kind) {}
  const Kind kind_;
};

}  // namespace videotask::store::internal

#endif  // VIDEOTASK_SERVER_STORE_DIALECT_H_
