#include "server/store/dialect.h"

#include "absl/strings/str_cat.h"

namespace videotask::store::internal {

const Dialect& Dialect::Sqlite() {
  static const Dialect* const kDialect = new Dialect(Kind::kSqlite);
  return *kDialect;
}

const Dialect& Dialect::Postgres() {
  static const Dialect* const kDialect = new Dialect(Kind::kPostgres);
  return *kDialect;
}

std::string Dialect::Param(int n, absl::string_view cast) const {
  if (kind_ == Kind::kSqlite) return absl::StrCat("?", n);
  if (cast.empty()) return absl::StrCat("$", n);
  return absl::StrCat("$", n, "::", cast);
}

absl::string_view Dialect::ColumnType(SqlType type) const {
  const bool pg = kind_ == Kind::kPostgres;
  switch (type) {
    case SqlType::kText:
      return "TEXT";
    case SqlType::kKey:
      return pg ? "TEXT COLLATE \"C\"" : "TEXT";
    case SqlType::kInt:
      return "INTEGER";
    case SqlType::kBigInt:
      return pg ? "BIGINT" : "INTEGER";
    case SqlType::kReal:
      return pg ? "DOUBLE PRECISION" : "REAL";
    case SqlType::kBlob:
      return pg ? "BYTEA" : "BLOB";
  }
  return "TEXT";
}

std::string Dialect::IndexedBy(absl::string_view table, absl::string_view index) const {
  if (kind_ == Kind::kSqlite) return absl::StrCat(table, " INDEXED BY ", index);
  return std::string(table);
}

std::string Dialect::ReturningRow(absl::string_view columns) const {
  if (kind_ == Kind::kSqlite) return "";
  return absl::StrCat(" RETURNING ", columns);
}

std::string Dialect::RowBefore(int time_param, int id_param, absl::string_view time_column,
                               absl::string_view id_column) const {
  if (kind_ == Kind::kSqlite) {
    // The first term lets SQLite use the index range; the row value alone
    // is not.
    return absl::StrCat(time_column, " <= ?", time_param, " AND (", time_column, ", ", id_column,
                        ") < (?", time_param, ", ?", id_param, ")");
  }
  return absl::StrCat("(", time_column, ", ", id_column, ") < ($", time_param, "::bigint, $",
                      id_param, "::text COLLATE \"C\")");
}

}  // namespace videotask::store::internal
