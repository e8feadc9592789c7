// A fresh PostgreSQL database per test on the throwaway cluster that
// scripts/pg-test-server started (ctest starts it as a fixture; see
// tests/server/store/CMakeLists.txt). The cluster is found through
// $VIDEOTASK_TEST_PG (a libpq key=value connection string) or the
// conninfo file the fixture wrote. There is no skipping: without a
// server, Create fails and so does the test.
#ifndef VIDEOTASK_TESTS_SERVER_STORE_PG_TEST_DB_H_
#define VIDEOTASK_TESTS_SERVER_STORE_PG_TEST_DB_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace videotask::testing {

class PgTestDb {
 public:
  // Creates an empty database with a unique name.
  static absl::StatusOr<std::unique_ptr<PgTestDb>> Create();
  ~PgTestDb();  // drops it (closing any connection still open)
  PgTestDb(const PgTestDb&) = delete;
  PgTestDb& operator=(const PgTestDb&) = delete;

  // key=value form, for PgStoreOptions::conninfo.
  const std::string& conninfo() const { return conninfo_; }
  // postgresql://user@host:port/db form, for videotaskd --store.
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }
  // Runs SQL (no parameters) as the superuser in this database.
  absl::Status Exec(const std::string& sql) const;

 private:
  PgTestDb() = default;
  std::string admin_conninfo_, conninfo_, url_, name_;
};

}  // namespace videotask::testing

#endif  // VIDEOTASK_TESTS_SERVER_STORE_PG_TEST_DB_H_
