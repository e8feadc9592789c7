// A thin RAII wrapper over libpq: connections, results and parameter lists.
// Every statement goes through PQexecParams with its values as separate
// parameters (never spliced into the SQL text).
#ifndef VIDEOTASK_SERVER_STORE_POSTGRES_PG_H_
#define VIDEOTASK_SERVER_STORE_POSTGRES_PG_H_

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace videotask::store::pg {

// SQLSTATE codes the store reacts to.
inline constexpr char kUniqueViolation[] = "23505";
inline constexpr char kSerializationFailure[] = "40001";
inline constexpr char kDeadlockDetected[] = "40P01";

// The values of one statement's $1..$N, in order.
class Params {
 public:
  Params& Text(absl::string_view value);
  Params& Int(int64_t value);
  Params& Double(double value);
  Params& Bool(bool value);
  Params& Null();
  // Raw bytes for a bytea parameter (sent in binary format).
  Params& Bytes(absl::string_view value);
  Params& OptionalText(const std::optional<std::string>& value) {
    return value.has_value() ? Text(*value) : Null();
  }

  int size() const { return static_cast<int>(values_.size()); }
  // Pointers valid while this object lives and is not changed.
  std::vector<const char*> Values() const;
  std::vector<int> Lengths() const;
  std::vector<int> Formats() const;

 private:
  std::vector<std::optional<std::string>> values_;
  std::vector<int> formats_;
};

// One statement's result (rows in text format unless asked for binary).
class Result {
 public:
  Result() = default;
  explicit Result(PGresult* res) : res_(res) {}
  Result(Result&& other) noexcept : res_(other.res_) { other.res_ = nullptr; }
  Result& operator=(Result&& other) noexcept;
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result();

  int rows() const { return res_ == nullptr ? 0 : PQntuples(res_); }
  // Rows changed by an UPDATE/DELETE/INSERT.
  int64_t affected() const;
  bool IsNull(int row, int col) const { return PQgetisnull(res_, row, col) != 0; }
  std::string Text(int row, int col) const;
  // Parses a text-format integer (0 for NULL).
  int64_t Int(int row, int col) const;
  double Double(int row, int col) const;

 private:
  PGresult* res_ = nullptr;
};

class Connection {
 public:
  // Connects with a libpq connection string (URI or key=value). The error
  // never repeats the string itself (it may carry a password).
  static absl::StatusOr<Connection> Open(const std::string& conninfo);

  Connection() = default;
  Connection(Connection&& other) noexcept
      : conn_(other.conn_), prepared_(std::move(other.prepared_)) {
    other.conn_ = nullptr;
  }
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Runs one statement. A failed statement becomes a Status whose message
  // carries the server's message and whose payload (see SqlState /
  // ConstraintOf) its SQLSTATE and constraint name: UNIQUE violations are
  // ALREADY_EXISTS, deadlocks and serialization failures ABORTED,
  // connection loss UNAVAILABLE, the rest INTERNAL.
  //
  // A statement with parameters is prepared on this connection the first
  // time its text is run (a named statement, kept for the session), so the
  // server parses and analyzes it once instead of on every call; the
  // planner still decides per call between a custom and a generic plan.
  // Up to kMaxPrepared texts are kept; others run unnamed, and so does a
  // text containing internal::kPlanEachCall (dialect.h), planned for its
  // values on every call.
  absl::StatusOr<Result> Exec(const char* sql, const Params& params = Params(),
                              bool binary_result = false);
  absl::StatusOr<Result> Exec(const std::string& sql, const Params& params = Params(),
                              bool binary_result = false) {
    return Exec(sql.c_str(), params, binary_result);
  }
  // A statement without parameters or rows (BEGIN, COMMIT, SAVEPOINT...).
  absl::Status Run(const char* sql);

  // False once the connection broke; Reset() tries to reconnect.
  bool ok() const;
  bool Reset();
  PGconn* raw() { return conn_; }

  static constexpr size_t kMaxPrepared = 512;
  // Statement texts prepared on this session (for tests).
  size_t prepared_count() const { return prepared_ == nullptr ? 0 : prepared_->size(); }

 private:
  explicit Connection(PGconn* conn) : conn_(conn) {}
  // The name of `sql` prepared on this session, preparing it first; empty
  // when it runs unnamed (no parameters, the cache is full, or the server
  // refused to prepare it: Exec then reports the server's own error).
  std::string PreparedName(const char* sql, int n_params);
  absl::StatusOr<Result> ToResult(PGresult* raw);

  PGconn* conn_ = nullptr;
  // Statement text -> prepared statement name, for this session.
  std::unique_ptr<absl::flat_hash_map<std::string, std::string>> prepared_;
};

// The SQLSTATE of a status from Connection::Exec ("" when none).
std::string SqlState(const absl::Status& status);
// The violated constraint's name of such a status ("" when none).
std::string ConstraintOf(const absl::Status& status);
// Deadlock or serialization failure: the whole transaction may be retried.
bool IsRetryableTxError(const absl::Status& status);

// A PostgreSQL array literal of text values, for a `$n::text[]` parameter.
std::string TextArray(const std::vector<std::string>& values);

}  // namespace videotask::store::pg

#endif  // VIDEOTASK_SERVER_STORE_POSTGRES_PG_H_
