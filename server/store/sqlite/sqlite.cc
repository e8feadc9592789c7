#include "server/store/sqlite/sqlite.h"

#include <sqlite3.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace videotask::store::sqlite {

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view context) {
  int extended = rc;
  std::string detail;
  if (db != nullptr) {
    extended = sqlite3_extended_errcode(db);
    if ((extended & 0xff) != (rc & 0xff)) extended = rc;
    detail = sqlite3_errmsg(db);
  } else {
    detail = sqlite3_errstr(rc);
  }
  std::string message =
      absl::StrCat(context, ": ", detail, " (sqlite code ", extended, ")");
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(message);
    case SQLITE_CONSTRAINT:
      if (extended == SQLITE_CONSTRAINT_UNIQUE || extended == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return absl::AlreadyExistsError(message);
      }
      return absl::FailedPreconditionError(message);
    default:
      return absl::InternalError(message);
  }
}

// ---------------------------------------------------------------- Statement

Statement::~Statement() { sqlite3_finalize(stmt_); }

absl::Status Statement::BindResult(int rc, int index) {
  if (rc == SQLITE_OK) return absl::OkStatus();
  return SqliteError(db_, rc, absl::StrCat("bind ?", index, " of \"", sql_, "\""));
}

absl::Status Statement::BindNull(int index) {
  return BindResult(sqlite3_bind_null(stmt_, index), index);
}

absl::Status Statement::BindInt64(int index, int64_t value) {
  return BindResult(sqlite3_bind_int64(stmt_, index, value), index);
}

absl::Status Statement::BindDouble(int index, double value) {
  return BindResult(sqlite3_bind_double(stmt_, index, value), index);
}

absl::Status Statement::BindText(int index, absl::string_view value) {
  return BindResult(sqlite3_bind_text64(stmt_, index, value.data(), value.size(),
                                        SQLITE_TRANSIENT, SQLITE_UTF8),
                    index);
}

absl::Status Statement::BindBlob(int index, absl::string_view value) {
  // A zero-length blob with a null pointer would bind NULL: use "".
  const char* data = value.data() != nullptr ? value.data() : "";
  return BindResult(sqlite3_bind_blob64(stmt_, index, data, value.size(), SQLITE_TRANSIENT),
                    index);
}

absl::StatusOr<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, rc, absl::StrCat("step \"", sql_, "\""));
}

absl::Status Statement::Run() {
  while (true) {
    VT_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return absl::OkStatus();
  }
}

bool Statement::ColumnIsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

int64_t Statement::ColumnInt64(int column) const { return sqlite3_column_int64(stmt_, column); }

double Statement::ColumnDouble(int column) const { return sqlite3_column_double(stmt_, column); }

std::string Statement::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return std::string();
  int size = sqlite3_column_bytes(stmt_, column);
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
}

std::string Statement::ColumnBlob(int column) const {
  const void* data = sqlite3_column_blob(stmt_, column);
  if (data == nullptr) return std::string();
  int size = sqlite3_column_bytes(stmt_, column);
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

void Statement::Reset() {
  // The error (if any) was already reported by Step().
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

// -------------------------------------------------------------------- Query

Query::~Query() {
  if (stmt_ == nullptr) return;
  stmt_->Reset();
  stmt_->in_use_ = false;
}

// ----------------------------------------------------------------- Database

struct Database::Impl {
  sqlite3* db = nullptr;
  absl::flat_hash_map<std::string, std::unique_ptr<Statement>> cache;

  ~Impl() {
    cache.clear();  // finalize before closing
    if (db != nullptr) {
      int rc = sqlite3_close(db);
      if (rc != SQLITE_OK) VT_LOG_ERROR("sqlite3_close failed: {}", sqlite3_errstr(rc));
    }
  }
};

Database::Database(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Database::Database(Database&&) noexcept = default;
Database& Database::operator=(Database&&) noexcept = default;
Database::~Database() = default;

namespace {

// Process-wide settings, made once before the first connection opens
// (sqlite3_config refuses them after SQLite has initialized).
//
// Memory statistics off: with them on, every allocation and free SQLite
// makes takes one process-wide mutex to count bytes, shared by the writer
// and every reader; end to end that lock was about 8 % of the server's CPU.
// Nothing here reads sqlite3_memory_used() or sets a soft heap limit.
void ConfigureProcessOnce() {
  static const bool configured = [] {
    int rc = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    // SQLITE_MISUSE: something in this process initialized SQLite first;
    // the defaults stay, which is correct, only slower.
    if (rc != SQLITE_OK) VT_LOG_DEBUG("sqlite3_config(MEMSTATUS) kept: {}", sqlite3_errstr(rc));
    return true;
  }();
  (void)configured;
}

}  // namespace

absl::StatusOr<Database> Database::Open(const std::string& path, int flags) {
  ConfigureProcessOnce();
  auto impl = std::make_unique<Impl>();
  int rc = sqlite3_open_v2(path.c_str(), &impl->db, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(impl->db, rc, absl::StrCat("open ", path));
    return status;  // impl's destructor closes the half-open handle
  }
  sqlite3_extended_result_codes(impl->db, 1);
  // Plans are chosen without looking at bound values (the query planner
  // stability guarantee). Without it, SQLite decides whether a partial
  // index (`WHERE state = 1`) fits a term like `state = ?` by the value
  // bound, and marks the statement to be prepared again whenever that
  // parameter is bound anew: every ListTasks by state was parsed and
  // planned on each call, about a sixth of its CPU.
  rc = sqlite3_db_config(impl->db, SQLITE_DBCONFIG_ENABLE_QPSG, 1, nullptr);
  if (rc != SQLITE_OK) return SqliteError(impl->db, rc, absl::StrCat("configure ", path));
  return Database(std::move(impl));
}

sqlite3* Database::handle() const { return impl_->db; }

absl::StatusOr<Query> Database::Prepare(absl::string_view sql) {
  auto it = impl_->cache.find(sql);
  if (it == impl_->cache.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(impl_->db, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      return SqliteError(impl_->db, rc, absl::StrCat("prepare \"", sql, "\""));
    }
    if (stmt == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("empty statement \"", sql, "\""));
    }
    std::string key(sql);
    it = impl_->cache
             .emplace(key, std::unique_ptr<Statement>(new Statement(impl_->db, stmt, key)))
             .first;
  }
  Statement* statement = it->second.get();
  if (statement->in_use_) {
    return absl::FailedPreconditionError(
        absl::StrCat("statement already in use on this connection: \"", sql, "\""));
  }
  statement->in_use_ = true;
  return Query(statement);
}

absl::Status Database::Exec(absl::string_view sql) {
  VT_ASSIGN_OR_RETURN(Query query, Prepare(sql));
  return query->Run();
}

absl::Status Database::ExecScript(const std::string& sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(impl_->db, sql.c_str(), nullptr, nullptr, &error);
  if (error != nullptr) sqlite3_free(error);  // sqlite3_errmsg has the same text
  if (rc != SQLITE_OK) return SqliteError(impl_->db, rc, "exec script");
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Database::QueryInt64(absl::string_view sql) {
  VT_ASSIGN_OR_RETURN(Query query, Prepare(sql));
  VT_ASSIGN_OR_RETURN(bool row, query->Step());
  if (!row) return absl::NotFoundError(absl::StrCat("no row from \"", sql, "\""));
  return query->ColumnInt64(0);
}

absl::StatusOr<std::string> Database::QueryText(absl::string_view sql) {
  VT_ASSIGN_OR_RETURN(Query query, Prepare(sql));
  VT_ASSIGN_OR_RETURN(bool row, query->Step());
  if (!row) return absl::NotFoundError(absl::StrCat("no row from \"", sql, "\""));
  return query->ColumnText(0);
}

int64_t Database::Changes() const { return sqlite3_changes64(impl_->db); }

bool Database::InAutocommit() const { return sqlite3_get_autocommit(impl_->db) != 0; }

size_t Database::CachedStatements() const { return impl_->cache.size(); }

// -------------------------------------------------------------- Transaction

absl::StatusOr<Transaction> Transaction::Begin(Database& db, Mode mode) {
  VT_RETURN_IF_ERROR(db.Exec(mode == Mode::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN"));
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ == nullptr) return;
  absl::Status status = Rollback();
  if (!status.ok()) VT_LOG_ERROR("rollback failed: {}", status.ToString());
}

absl::Status Transaction::Commit() {
  if (db_ == nullptr) return absl::FailedPreconditionError("transaction already ended");
  Database* db = db_;
  absl::Status status = db->Exec("COMMIT");
  if (status.ok() || db->InAutocommit()) {
    // Committed, or SQLite rolled the transaction back itself.
    db_ = nullptr;
  }
  return status;
}

absl::Status Transaction::Rollback() {
  if (db_ == nullptr) return absl::OkStatus();
  Database* db = db_;
  db_ = nullptr;
  if (db->InAutocommit()) return absl::OkStatus();  // SQLite already rolled back
  return db->Exec("ROLLBACK");
}

}  // namespace videotask::store::sqlite
