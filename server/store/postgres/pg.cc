#include "server/store/postgres/pg.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "server/store/dialect.h"

namespace videotask::store::pg {
namespace {

constexpr char kSqlStateUrl[] = "videotask/pg.sqlstate";
constexpr char kConstraintUrl[] = "videotask/pg.constraint";

std::string TrimmedError(const char* message) {
  if (message == nullptr) return "unknown error";
  return std::string(absl::StripTrailingAsciiWhitespace(message));
}

}  // namespace

// ------------------------------------------------------------------ Params

Params& Params::Text(absl::string_view value) {
  values_.emplace_back(std::string(value));
  formats_.push_back(0);
  return *this;
}

Params& Params::Int(int64_t value) { return Text(absl::StrCat(value)); }

Params& Params::Double(double value) { return Text(absl::StrFormat("%.17g", value)); }

Params& Params::Bool(bool value) { return Text(value ? "true" : "false"); }

Params& Params::Null() {
  values_.emplace_back(std::nullopt);
  formats_.push_back(0);
  return *this;
}

Params& Params::Bytes(absl::string_view value) {
  values_.emplace_back(std::string(value));
  formats_.push_back(1);
  return *this;
}

std::vector<const char*> Params::Values() const {
  std::vector<const char*> out;
  out.reserve(values_.size());
  for (const auto& v : values_) out.push_back(v.has_value() ? v->data() : nullptr);
  return out;
}

std::vector<int> Params::Lengths() const {
  std::vector<int> out;
  out.reserve(values_.size());
  for (const auto& v : values_) out.push_back(v.has_value() ? static_cast<int>(v->size()) : 0);
  return out;
}

std::vector<int> Params::Formats() const { return formats_; }

// ------------------------------------------------------------------ Result

Result& Result::operator=(Result&& other) noexcept {
  if (this != &other) {
    if (res_ != nullptr) PQclear(res_);
    res_ = other.res_;
    other.res_ = nullptr;
  }
  return *this;
}

Result::~Result() {
  if (res_ != nullptr) PQclear(res_);
}

int64_t Result::affected() const {
  if (res_ == nullptr) return 0;
  int64_t n = 0;
  if (!absl::SimpleAtoi(PQcmdTuples(res_), &n)) return 0;
  return n;
}

std::string Result::Text(int row, int col) const {
  return std::string(PQgetvalue(res_, row, col),
                     static_cast<size_t>(PQgetlength(res_, row, col)));
}

int64_t Result::Int(int row, int col) const {
  if (IsNull(row, col)) return 0;
  int64_t n = 0;
  if (!absl::SimpleAtoi(PQgetvalue(res_, row, col), &n)) return 0;
  return n;
}

double Result::Double(int row, int col) const {
  if (IsNull(row, col)) return 0;
  double d = 0;
  if (!absl::SimpleAtod(PQgetvalue(res_, row, col), &d)) return 0;
  return d;
}

// -------------------------------------------------------------- Connection

absl::StatusOr<Connection> Connection::Open(const std::string& conninfo) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return absl::ResourceExhaustedError("libpq could not allocate a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = TrimmedError(PQerrorMessage(conn));
    PQfinish(conn);
    return absl::UnavailableError(absl::StrCat("cannot connect to PostgreSQL: ", message));
  }
  Connection c(conn);
  // Quiet NOTICEs (IF NOT EXISTS and the like) stay out of stderr.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  return c;
}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = other.conn_;
    other.conn_ = nullptr;
    prepared_ = std::move(other.prepared_);
  }
  return *this;
}

Connection::~Connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

bool Connection::ok() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }

bool Connection::Reset() {
  if (conn_ == nullptr) return false;
  PQreset(conn_);
  prepared_.reset();  // a new session has none of them
  return ok();
}

std::string Connection::PreparedName(const char* sql, int n_params) {
  if (n_params == 0 || absl::StrContains(sql, internal::kPlanEachCall)) return "";
  if (prepared_ == nullptr) {
    prepared_ = std::make_unique<absl::flat_hash_map<std::string, std::string>>();
  }
  auto it = prepared_->find(sql);
  if (it != prepared_->end()) return it->second;
  if (prepared_->size() >= kMaxPrepared) return "";
  std::string name = absl::StrCat("vt", prepared_->size());
  PGresult* res = PQprepare(conn_, name.c_str(), sql, n_params, nullptr);
  const bool ok = res != nullptr && PQresultStatus(res) == PGRES_COMMAND_OK;
  PQclear(res);
  if (!ok) return "";  // run unnamed: the server says what is wrong with it
  prepared_->emplace(sql, name);
  return name;
}

absl::StatusOr<Result> Connection::Exec(const char* sql, const Params& params,
                                        bool binary_result) {
  if (conn_ == nullptr) return absl::FailedPreconditionError("PostgreSQL connection is closed");
  std::vector<const char*> values = params.Values();
  std::vector<int> lengths = params.Lengths();
  std::vector<int> formats = params.Formats();
  const int result_format = binary_result ? 1 : 0;
  const std::string name = PreparedName(sql, params.size());
  if (!name.empty()) {
    PGresult* raw = PQexecPrepared(conn_, name.c_str(), params.size(), values.data(),
                                   lengths.data(), formats.data(), result_format);
    const char* state = raw != nullptr ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
    // The session lost the statement (DISCARD ALL by a pooler), or a schema
    // change altered what it returns: forget it and run the text unnamed.
    const bool stale = state != nullptr && (std::strcmp(state, "26000") == 0 ||
                                            std::strcmp(state, "0A000") == 0);
    if (!stale) return ToResult(raw);
    PQclear(raw);
    prepared_->erase(sql);
  }
  return ToResult(PQexecParams(conn_, sql, params.size(), nullptr, values.data(), lengths.data(),
                               formats.data(), result_format));
}

absl::StatusOr<Result> Connection::ToResult(PGresult* raw) {
  if (raw == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("PostgreSQL: ", TrimmedError(PQerrorMessage(conn_))));
  }
  ExecStatusType st = PQresultStatus(raw);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Result(raw);
  const char* state_field = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
  const char* constraint_field = PQresultErrorField(raw, PG_DIAG_CONSTRAINT_NAME);
  std::string state = state_field != nullptr ? state_field : "";
  std::string constraint = constraint_field != nullptr ? constraint_field : "";
  std::string message = TrimmedError(PQresultErrorMessage(raw));
  PQclear(raw);
  absl::StatusCode code = absl::StatusCode::kInternal;
  if (state == kUniqueViolation) {
    code = absl::StatusCode::kAlreadyExists;
  } else if (state == kSerializationFailure || state == kDeadlockDetected) {
    code = absl::StatusCode::kAborted;
  } else if (!ok() || absl::StartsWith(state, "08") || absl::StartsWith(state, "57P")) {
    code = absl::StatusCode::kUnavailable;
  }
  absl::Status status(code, absl::StrCat("PostgreSQL: ", message));
  if (!state.empty()) status.SetPayload(kSqlStateUrl, absl::Cord(state));
  if (!constraint.empty()) status.SetPayload(kConstraintUrl, absl::Cord(constraint));
  return status;
}

absl::Status Connection::Run(const char* sql) { return Exec(sql).status(); }

std::string SqlState(const absl::Status& status) {
  auto payload = status.GetPayload(kSqlStateUrl);
  return payload.has_value() ? std::string(*payload) : std::string();
}

std::string ConstraintOf(const absl::Status& status) {
  auto payload = status.GetPayload(kConstraintUrl);
  return payload.has_value() ? std::string(*payload) : std::string();
}

bool IsRetryableTxError(const absl::Status& status) {
  std::string state = SqlState(status);
  return state == kSerializationFailure || state == kDeadlockDetected;
}

std::string TextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace videotask::store::pg
