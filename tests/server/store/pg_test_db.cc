#include "tests/server/store/pg_test_db.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "server/store/postgres/pg.h"

namespace videotask::testing {
namespace {

absl::StatusOr<std::string> AdminConninfo() {
  const char* env = std::getenv("VIDEOTASK_TEST_PG");
  if (env != nullptr && *env != '\0') return std::string(env);
  std::ifstream in(VT_PG_CONNINFO_FILE);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text(absl::StripAsciiWhitespace(ss.str()));
  if (text.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no test PostgreSQL server: set VIDEOTASK_TEST_PG or start one with "
        "`scripts/pg-test-server start ",
        VT_PG_STATE_DIR, "` (ctest does this in its pg_server_start fixture)"));
  }
  return text;
}

// The fields of a key=value connection string.
std::map<std::string, std::string> ParseConninfo(const std::string& conninfo) {
  std::map<std::string, std::string> out;
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &err);
  if (options == nullptr) {
    if (err != nullptr) PQfreemem(err);
    return out;
  }
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && *o->val != '\0') out[o->keyword] = o->val;
  }
  PQconninfoFree(options);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PgTestDb>> PgTestDb::Create() {
  VT_ASSIGN_OR_RETURN(std::string admin, AdminConninfo());
  static std::atomic<int> counter{0};
  absl::BitGen gen;
  std::unique_ptr<PgTestDb> db(new PgTestDb());
  // Digits and lower-case letters only: safe as an identifier (CREATE
  // DATABASE takes no parameters).
  db->name_ = absl::StrCat("vt_test_", ::getpid(), "_", counter.fetch_add(1), "_",
                           absl::Uniform<uint32_t>(gen));
  db->admin_conninfo_ = admin;
  {
    VT_ASSIGN_OR_RETURN(store::pg::Connection conn, store::pg::Connection::Open(admin));
    VT_RETURN_IF_ERROR(
        conn.Run(absl::StrCat("CREATE DATABASE ", db->name_, " TEMPLATE template0").c_str()));
  }
  db->conninfo_ = absl::StrCat(admin, " dbname=", db->name_);
  std::map<std::string, std::string> fields = ParseConninfo(admin);
  std::string host = fields.count("host") ? fields["host"] : "127.0.0.1";
  std::string port = fields.count("port") ? fields["port"] : "5432";
  std::string user = fields.count("user") ? fields["user"] : "postgres";
  db->url_ = absl::StrCat("postgresql://", user, "@", host, ":", port, "/", db->name_);
  return db;
}

PgTestDb::~PgTestDb() {
  absl::StatusOr<store::pg::Connection> conn = store::pg::Connection::Open(admin_conninfo_);
  if (!conn.ok()) return;
  absl::Status dropped =
      conn->Run(absl::StrCat("DROP DATABASE IF EXISTS ", name_, " WITH (FORCE)").c_str());
  if (!dropped.ok()) VT_LOG_WARN("dropping test database {}: {}", name_, dropped.ToString());
}

absl::Status PgTestDb::Exec(const std::string& sql) const {
  VT_ASSIGN_OR_RETURN(store::pg::Connection conn, store::pg::Connection::Open(conninfo_));
  return conn.Run(sql.c_str());
}

}  // namespace videotask::testing
