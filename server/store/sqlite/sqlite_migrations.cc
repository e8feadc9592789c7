#include "server/store/sqlite/sqlite_migrations.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/store/schema.h"
#include "server/store/state_counts.h"

namespace videotask::store {
namespace {

// Step i brings the database from version i to i + 1.
const std::vector<std::string>& Steps() {
  static const std::vector<std::string>* const kSteps = new std::vector<std::string>{
      internal::SchemaV1(internal::Dialect::Sqlite()),
      internal::SchemaV2(internal::Dialect::Sqlite()),
      internal::SchemaAttemptsAndPauses(internal::Dialect::Sqlite()),
      internal::SchemaRetention(internal::Dialect::Sqlite()),
      internal::SchemaCallers(internal::Dialect::Sqlite()),
      internal::SchemaStateCounts(internal::Dialect::Sqlite()),
      internal::SchemaListIndexes(internal::Dialect::Sqlite()),
      internal::SchemaReuseKey(internal::Dialect::Sqlite()),
      internal::SchemaWebhookOutbox(internal::Dialect::Sqlite()),
      internal::SchemaDailySpend(internal::Dialect::Sqlite()),
  };
  return *kSteps;
}

}  // namespace

int64_t LatestSchemaVersion() { return static_cast<int64_t>(Steps().size()); }

absl::Status Migrate(sqlite::Database& db) {
  VT_ASSIGN_OR_RETURN(int64_t version, db.QueryInt64("PRAGMA user_version"));
  VT_RETURN_IF_ERROR(internal::CheckSchemaVersion(version, LatestSchemaVersion()));
  for (; version < LatestSchemaVersion(); ++version) {
    VT_ASSIGN_OR_RETURN(sqlite::Transaction tx,
                        sqlite::Transaction::Begin(db, sqlite::Transaction::Mode::kImmediate));
    absl::Status step = db.ExecScript(Steps()[static_cast<size_t>(version)]);
    if (!step.ok()) return internal::SchemaStepError(step, version + 1);
    VT_RETURN_IF_ERROR(db.ExecScript(absl::StrCat("PRAGMA user_version = ", version + 1)));
    VT_RETURN_IF_ERROR(tx.Commit());
  }
  return absl::OkStatus();
}

}  // namespace videotask::store
