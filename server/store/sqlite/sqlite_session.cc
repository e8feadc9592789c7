#include "server/store/sqlite/sqlite_session.h"

#include <cstdint>
#include <string>
#include <utility>

#include "common/status_macros.h"

namespace videotask::store::sqlite {
namespace {

class StatementReader final : public internal::RowReader {
 public:
  explicit StatementReader(const Statement& st) : st_(st) {}
  bool IsNull(int column) const override { return st_.ColumnIsNull(column); }
  int64_t Int(int column) const override { return st_.ColumnInt64(column); }
  double Double(int column) const override { return st_.ColumnDouble(column); }
  std::string Text(int column) const override { return st_.ColumnText(column); }

 private:
  const Statement& st_;
};

// Binds ?1, ?2, ... in call order; keeps the first error.
class StatementWriter final : public internal::RowWriter {
 public:
  explicit StatementWriter(Statement& st) : st_(st) {}
  RowWriter& Null() override { return Keep(st_.BindNull(next_++)); }
  RowWriter& Int(int64_t value) override { return Keep(st_.BindInt64(next_++, value)); }
  RowWriter& Double(double value) override { return Keep(st_.BindDouble(next_++, value)); }
  RowWriter& Text(absl::string_view value) override { return Keep(st_.BindText(next_++, value)); }
  RowWriter& Blob(absl::string_view value) override { return Keep(st_.BindBlob(next_++, value)); }
  const absl::Status& status() const { return status_; }

 private:
  RowWriter& Keep(absl::Status status) {
    if (status_.ok() && !status.ok()) status_ = std::move(status);
    return *this;
  }
  Statement& st_;
  int next_ = 1;
  absl::Status status_;
};

}  // namespace

absl::Status SqliteSession::Query(const std::string& sql, Bind bind, OnRow on_row) {
  VT_ASSIGN_OR_RETURN(sqlite::Query query, db_.Prepare(sql));
  StatementWriter writer(*query);
  bind(writer);
  VT_RETURN_IF_ERROR(writer.status());
  StatementReader reader(*query);
  while (true) {
    VT_ASSIGN_OR_RETURN(bool row, query->Step());
    if (!row) return absl::OkStatus();
    VT_RETURN_IF_ERROR(on_row(reader));
  }
}

}  // namespace videotask::store::sqlite
