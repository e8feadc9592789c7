#include "server/store/postgres/pg_session.h"

#include <cstdint>
#include <string>

#include "common/status_macros.h"

namespace videotask::store::pg {
namespace {

class ResultRowReader final : public internal::RowReader {
 public:
  ResultRowReader(const Result& result, int row) : result_(result), row_(row) {}
  bool IsNull(int column) const override { return result_.IsNull(row_, column); }
  int64_t Int(int column) const override { return result_.Int(row_, column); }
  double Double(int column) const override { return result_.Double(row_, column); }
  std::string Text(int column) const override { return result_.Text(row_, column); }

 private:
  const Result& result_;
  const int row_;
};

class ParamsWriter final : public internal::RowWriter {
 public:
  RowWriter& Null() override { return Keep(params_.Null()); }
  RowWriter& Int(int64_t value) override { return Keep(params_.Int(value)); }
  RowWriter& Double(double value) override { return Keep(params_.Double(value)); }
  RowWriter& Text(absl::string_view value) override { return Keep(params_.Text(value)); }
  RowWriter& Blob(absl::string_view value) override { return Keep(params_.Bytes(value)); }
  const Params& params() const { return params_; }

 private:
  RowWriter& Keep(Params&) { return *this; }
  Params params_;
};

}  // namespace

absl::Status PgSession::Query(const std::string& sql, Bind bind, OnRow on_row) {
  ParamsWriter writer;
  bind(writer);
  VT_ASSIGN_OR_RETURN(Result result, conn_.Exec(sql, writer.params(), binary_result_));
  for (int i = 0; i < result.rows(); ++i) {
    VT_RETURN_IF_ERROR(on_row(ResultRowReader(result, i)));
  }
  return absl::OkStatus();
}

}  // namespace videotask::store::pg
