// The schema of the task database, described once: tables, columns with
// logical types, and indexes. Each engine renders it through its Dialect
// and adds what is its own (PostgreSQL: backend_limits, the NOTIFY trigger,
// blob storage settings) in its migrations.
#ifndef VIDEOTASK_SERVER_STORE_SCHEMA_H_
#define VIDEOTASK_SERVER_STORE_SCHEMA_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "server/store/dialect.h"

namespace videotask::store::internal {

struct ColumnDef {
  const char* name;
  SqlType type;
  const char* constraints;  // "NOT NULL", "PRIMARY KEY NOT NULL", "" (nullable)...
};

// The column of `tasks` at a TaskColumn index (task_row.h).
const ColumnDef& TaskColumnDef(int column);

// Version 1: tasks, task_labels, blobs, stub_counters and their indexes, as
// one script for `dialect`.
//
// Times are integer microseconds since the Unix epoch (NULL unset,
// INT64_MAX "never"); states follow videotask::TaskState (1..7);
// labels_json and output_urls_json are JSON (NULL when empty); task_labels
// mirrors the labels for filtering.
std::string SchemaV1(const Dialect& dialect);

// Version 2: tasks.model_options_json (JSON object, NULL when empty), the
// provider inputs of spec.model_options.
std::string SchemaV2(const Dialect& dialect);

// Version 3: tasks.attempts_json (JSON array of a task's earlier tries, NULL when
// none); backend_pauses (backend, reason, caller, since: one row per paused
// backend); images kept while a non-SUCCEEDED task uses them (index
// tasks_kept_image replaces tasks_live_image).
std::string SchemaAttemptsAndPauses(const Dialect& dialect);

// Version 4: tasks.output_removed_time (microseconds, NULL while the output
// file is kept) and the indexes retention walks: terminal tasks by end time,
// and SUCCEEDED tasks whose output is still kept by end time.
std::string SchemaRetention(const Dialect& dialect);

// Version 5: tasks.caller (who submitted the task; 'anonymous' for tasks
// stored before) and the indexes of the caller filter, the fair claim, the
// per-caller QUEUED count and the slots each caller holds; tasks_claim,
// which the fair claim replaces, goes.
std::string SchemaCallers(const Dialect& dialect);

// The indexes of ListTasks' filters: tasks by backend, newest first; and
// task_labels.create_time (its task's create_time), with task_labels_list
// (key, value, create_time, task_id) replacing task_labels_by_value, so a
// label filter reads one index range in list order.
std::string SchemaListIndexes(const Dialect& dialect);
// Reuse of identical work: tasks.reuse_key (the digest of what makes two
// tasks identical, '' for tasks submitted without reuse) and
// tasks.reused_from (the task a follower waits for or a reused task took
// its output from, ''), with the index of the match (by key, partial on
// keyed tasks) and of the followers of a task (partial on QUEUED followers).
std::string SchemaReuseKey(const Dialect& dialect);
// tasks.notify_url and tasks.notify_events_json (the webhooks a task asked
// for) and webhook_outbox (outbox.h): one row per event and URL, written in
// the transaction of the task's transition, with its delivery state.
std::string SchemaWebhookOutbox(const Dialect& dialect);
// Daily budgets: tasks.estimated_cost_micros (price x duration at submit,
// micro-dollars, 0 for tasks stored before) and daily_spend (day: days
// since 1970-01-01 UTC; kind: 'backend' or 'caller'; name; spent_micros),
// what each backend and caller has spent that day.
std::string SchemaDailySpend(const Dialect& dialect);

// The shared checks of a migration runner: FAILED_PRECONDITION when the
// stored version is newer than `latest` (a newer binary wrote it) or
// negative.
absl::Status CheckSchemaVersion(int64_t version, int64_t latest);

// A failed step's status, naming the version it was going to.
absl::Status SchemaStepError(const absl::Status& status, int64_t to_version);

}  // namespace videotask::store::internal

#endif  // VIDEOTASK_SERVER_STORE_SCHEMA_H_
