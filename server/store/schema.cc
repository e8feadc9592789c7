#include "server/store/schema.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/store/outbox.h"
#include "server/store/task_row.h"

namespace videotask::store::internal {
namespace {

constexpr char kNotNull[] = "NOT NULL";

// In TaskColumn order.
constexpr ColumnDef kTaskColumns[kNumColumns] = {
    {"id", SqlType::kKey, "PRIMARY KEY NOT NULL"},
    {"request_id", SqlType::kText, "NOT NULL DEFAULT ''"},
    {"backend", SqlType::kText, kNotNull},
    {"model", SqlType::kText, kNotNull},
    {"image_source", SqlType::kInt, kNotNull},
    {"image_uri", SqlType::kText, kNotNull},
    {"image_server_path", SqlType::kText, kNotNull},
    {"image_filename", SqlType::kText, kNotNull},
    {"image_mime_type", SqlType::kText, kNotNull},
    {"prompt_text", SqlType::kText, kNotNull},
    {"ratio", SqlType::kText, kNotNull},
    {"duration_seconds", SqlType::kInt, kNotNull},
    {"seed", SqlType::kBigInt, ""},
    {"requested_stub", SqlType::kText, kNotNull},
    {"labels_json", SqlType::kText, ""},
    {"priority", SqlType::kInt, kNotNull},
    {"public_figure_threshold", SqlType::kText, kNotNull},
    {"state", SqlType::kInt, "NOT NULL CHECK (state BETWEEN 1 AND 7)"},
    {"provider_task_id", SqlType::kText, kNotNull},
    {"provider_status", SqlType::kText, kNotNull},
    {"progress", SqlType::kReal, kNotNull},
    {"target_filename_stub", SqlType::kKey, kNotNull},
    {"output_path", SqlType::kText, kNotNull},
    {"output_size_bytes", SqlType::kBigInt, kNotNull},
    {"output_sha256", SqlType::kText, kNotNull},
    {"error_code", SqlType::kText, kNotNull},
    {"error_message", SqlType::kText, kNotNull},
    {"error_retryable", SqlType::kInt, kNotNull},
    {"error_provider_code", SqlType::kText, kNotNull},
    {"attempt_count", SqlType::kInt, kNotNull},
    {"image_sha256", SqlType::kText, kNotNull},
    {"image_size_bytes", SqlType::kBigInt, kNotNull},
    {"create_time", SqlType::kBigInt, kNotNull},
    {"update_time", SqlType::kBigInt, ""},
    {"start_time", SqlType::kBigInt, ""},
    {"end_time", SqlType::kBigInt, ""},
    {"next_attempt_time", SqlType::kBigInt, ""},
    {"lease_owner", SqlType::kText, "NOT NULL DEFAULT ''"},
    {"lease_expiry", SqlType::kBigInt, ""},
    {"provider_cancel_pending", SqlType::kInt, "NOT NULL DEFAULT 0"},
    {"output_urls_json", SqlType::kText, ""},
    {"spec_fingerprint", SqlType::kText, kNotNull},
    {"version", SqlType::kBigInt, kNotNull},
    {"model_options_json", SqlType::kText, ""},
    {"attempts_json", SqlType::kText, ""},
    {"output_removed_time", SqlType::kBigInt, ""},
    {"caller", SqlType::kText, "NOT NULL DEFAULT 'anonymous'"},
    {"reuse_key", SqlType::kText, "NOT NULL DEFAULT ''"},
    {"reused_from", SqlType::kText, "NOT NULL DEFAULT ''"},
    {"notify_url", SqlType::kText, "NOT NULL DEFAULT ''"},
    {"notify_events_json", SqlType::kText, ""},
    {"estimated_cost_micros", SqlType::kBigInt, "NOT NULL DEFAULT 0"},
};

constexpr ColumnDef kLabelColumns[] = {
    {"task_id", SqlType::kKey, "NOT NULL REFERENCES tasks (id) ON DELETE CASCADE"},
    {"key", SqlType::kText, kNotNull},
    {"value", SqlType::kText, kNotNull},
};
constexpr ColumnDef kBlobColumns[] = {
    {"sha256", SqlType::kText, "PRIMARY KEY NOT NULL"},
    {"data", SqlType::kBlob, kNotNull},
};
constexpr ColumnDef kStubCounterColumns[] = {
    {"base", SqlType::kText, "PRIMARY KEY NOT NULL"},
    {"next", SqlType::kBigInt, kNotNull},
};

// Indexes of both engines (PostgreSQL adds tasks_active in its migration).
constexpr const char* kIndexes[] = {
    "CREATE UNIQUE INDEX tasks_request_id ON tasks (request_id) WHERE request_id <> ''",
    "CREATE UNIQUE INDEX tasks_stub ON tasks (target_filename_stub)",
    "CREATE INDEX tasks_list ON tasks (create_time DESC, id DESC)",
    "CREATE INDEX tasks_state_list ON tasks (state, create_time DESC, id DESC)",
    "CREATE INDEX tasks_claim ON tasks (backend, priority DESC, create_time, id) WHERE state = 1",
    "CREATE INDEX tasks_live_image ON tasks (image_sha256)\n"
    "  WHERE image_sha256 <> '' AND state BETWEEN 1 AND 4",
    // next_attempt_time NULLS FIRST: SQLite's default order, spelled out
    // below for PostgreSQL.
    nullptr,
    "CREATE INDEX tasks_leased ON tasks (lease_owner) WHERE lease_owner <> ''",
    "CREATE INDEX tasks_recoverable ON tasks (create_time, id)\n"
    "  WHERE state BETWEEN 2 AND 4 OR (state = 7 AND provider_cancel_pending = 1)",
    "CREATE INDEX task_labels_by_value ON task_labels (key, value, task_id)",
};

std::string CreateTable(const Dialect& d, const char* name, const ColumnDef* columns, size_t n,
                        absl::string_view extra = "") {
  std::vector<std::string> lines;
  for (size_t i = 0; i < n; ++i) {
    const ColumnDef& c = columns[i];
    std::string line = absl::StrCat("  ", c.name, " ", d.ColumnType(c.type));
    if (c.constraints[0] != '\0') absl::StrAppend(&line, " ", c.constraints);
    lines.push_back(std::move(line));
  }
  if (!extra.empty()) lines.push_back(absl::StrCat("  ", extra));
  // Rowid-less tables where the key is the whole point (SQLite only).
  const bool without_rowid = d.kind() == Dialect::Kind::kSqlite &&
                             absl::string_view(name) != "tasks" &&
                             absl::string_view(name) != "blobs";
  return absl::StrCat("CREATE TABLE ", name, " (\n", absl::StrJoin(lines, ",\n"), "\n)",
                      without_rowid ? " WITHOUT ROWID" : "", ";\n");
}

constexpr ColumnDef kPauseColumns[] = {
    {"backend", SqlType::kText, "PRIMARY KEY NOT NULL"},
    {"reason", SqlType::kText, kNotNull},
    {"caller", SqlType::kText, kNotNull},
    {"since", SqlType::kBigInt, kNotNull},
};

// What was spent on one UTC day (days since the epoch) per backend or
// caller (kind), in micro-dollars.
constexpr ColumnDef kDailySpendColumns[] = {
    {"day", SqlType::kBigInt, kNotNull},
    {"kind", SqlType::kText, kNotNull},
    {"name", SqlType::kText, kNotNull},
    {"spent_micros", SqlType::kBigInt, kNotNull},
};

std::string AddTaskColumn(const Dialect& d, int column) {
  const ColumnDef& def = kTaskColumns[column];
  return absl::StrCat("ALTER TABLE tasks ADD COLUMN ", def.name, " ", d.ColumnType(def.type),
                      def.constraints[0] != '\0' ? " " : "", def.constraints, ";\n");
}

std::string QueuedNextIndex(const Dialect& d) {
  return absl::StrCat("CREATE INDEX tasks_queued_next ON tasks (backend, next_attempt_time",
                      d.kind() == Dialect::Kind::kPostgres ? " NULLS FIRST" : "",
                      ") WHERE state = 1");
}

}  // namespace

const ColumnDef& TaskColumnDef(int column) { return kTaskColumns[column]; }

std::string SchemaV1(const Dialect& d) {
  std::string script = CreateTable(d, "tasks", kTaskColumns, kV1Columns);
  for (const char* index : kIndexes) {
    if (index == nullptr) {
      absl::StrAppend(&script, QueuedNextIndex(d), ";\n");
      continue;
    }
    if (absl::string_view(index).find("task_labels") != absl::string_view::npos) {
      absl::StrAppend(
          &script, CreateTable(d, "task_labels", kLabelColumns, 3, "PRIMARY KEY (task_id, key)"));
    }
    absl::StrAppend(&script, index, ";\n");
  }
  absl::StrAppend(&script, CreateTable(d, "blobs", kBlobColumns, 2),
                  CreateTable(d, "stub_counters", kStubCounterColumns, 2));
  return script;
}

std::string SchemaV2(const Dialect& d) { return AddTaskColumn(d, kModelOptionsJson); }

std::string SchemaAttemptsAndPauses(const Dialect& d) {
  return absl::StrCat(
      AddTaskColumn(d, kAttemptsJson), CreateTable(d, "backend_pauses", kPauseColumns, 4),
      // Images stay while a FAILED or CANCELLED task may be retried.
      "DROP INDEX tasks_live_image;\n",
      "CREATE INDEX tasks_kept_image ON tasks (image_sha256)\n"
      "  WHERE image_sha256 <> '' AND state <> 5;\n");
}

std::string SchemaRetention(const Dialect& d) {
  return absl::StrCat(
      AddTaskColumn(d, kOutputRemovedTime),
      "CREATE INDEX tasks_ended ON tasks (end_time, id) WHERE state BETWEEN 5 AND 7;\n",
      "CREATE INDEX tasks_output_kept ON tasks (end_time, id)\n"
      "  WHERE state = 5 AND output_path <> '' AND output_removed_time IS NULL;\n");
}

std::string SchemaCallers(const Dialect& d) {
  return absl::StrCat(AddTaskColumn(d, kCaller),
                      // The claim reads tasks_caller_claim instead.
                      "DROP INDEX tasks_claim;\n",
                      // ListTasks by caller, newest first.
                      "CREATE INDEX tasks_caller_list ON tasks (caller, create_time DESC, id DESC);\n",
                      // The fair claim: a caller's next tasks at a backend.
                      "CREATE INDEX tasks_caller_claim ON tasks\n"
                      "  (backend, caller, priority DESC, create_time, id) WHERE state = 1;\n",
                      // A caller's QUEUED count (--max_queued_per_caller).
                      "CREATE INDEX tasks_caller_queued ON tasks (caller) WHERE state = 1;\n",
                      // Slots each caller holds at a backend.
                      "CREATE INDEX tasks_caller_active ON tasks (backend, caller)\n"
                      "  WHERE state BETWEEN 2 AND 4;\n");
}

std::string SchemaListIndexes(const Dialect& d) {
  return absl::StrCat(
      // ListTasks by backend, newest first.
      "CREATE INDEX tasks_backend_list ON tasks (backend, create_time DESC, id DESC);\n",
      // ListTasks by label, newest first: each label row carries its task's
      // create_time (which never changes), so a label's page is one range.
      "ALTER TABLE task_labels ADD COLUMN create_time ", d.ColumnType(SqlType::kBigInt),
      " NOT NULL DEFAULT 0;\n",
      "UPDATE task_labels SET create_time =\n"
      "  COALESCE((SELECT t.create_time FROM tasks t WHERE t.id = task_labels.task_id), 0);\n",
      "DROP INDEX task_labels_by_value;\n",
      "CREATE INDEX task_labels_list ON task_labels (key, value, create_time DESC, task_id DESC);\n");
}

std::string SchemaReuseKey(const Dialect& d) {
  return absl::StrCat(AddTaskColumn(d, kReuseKey), AddTaskColumn(d, kReusedFrom),
                      // A reuse submit's match: by key, SUCCEEDED or live.
                      "CREATE INDEX tasks_reuse_key ON tasks (reuse_key, state)\n"
                      "  WHERE reuse_key <> '';\n",
                      // The QUEUED followers of a task.
                      "CREATE INDEX tasks_followers ON tasks (reused_from, create_time, id)\n"
                      "  WHERE reused_from <> '' AND state = 1;\n");
}

std::string SchemaWebhookOutbox(const Dialect& d) {
  return absl::StrCat(
      AddTaskColumn(d, kNotifyUrl), AddTaskColumn(d, kNotifyEventsJson),
      CreateTable(d, "webhook_outbox", OutboxColumnDefs(), kNumOutboxColumns),
      // The due messages, for the delivery claim.
      "CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_time) WHERE state = 1;\n",
      // A task's deliveries (GetTask).
      "CREATE INDEX webhook_outbox_task ON webhook_outbox (task_id, event_time);\n");
}

std::string SchemaDailySpend(const Dialect& d) {
  return absl::StrCat(AddTaskColumn(d, kEstimatedCostMicros),
                      CreateTable(d, "daily_spend", kDailySpendColumns, 4,
                                  "PRIMARY KEY (day, kind, name)"));
}

absl::Status CheckSchemaVersion(int64_t version, int64_t latest) {
  if (version > latest) {
    return absl::FailedPreconditionError(absl::StrCat("task database schema v", version,
                                                      " is newer than this binary (v", latest,
                                                      "); use a newer videotaskd"));
  }
  if (version < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("task database has an invalid schema version ", version));
  }
  return absl::OkStatus();
}

absl::Status SchemaStepError(const absl::Status& status, int64_t to_version) {
  return absl::Status(status.code(),
                      absl::StrCat("schema step to v", to_version, ": ", status.message()));
}

}  // namespace videotask::store::internal
