#include "server/store/sqlite/sqlite_task_store.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "server/domain/task.h"
#include "server/store/sqlite/sqlite.h"
#include "server/store/sqlite/sqlite_migrations.h"
#include "server/store/state_counts.h"
#include "server/store/task_sql.h"
#include "tests/server/store/store_conformance.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace videotask::store {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::videotask::testing::IsOk;
using ::videotask::testing::StatusIs;

constexpr int64_t kInlineMax = 1024;

bool FileExists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

int64_t FileSizeOf(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

class SqliteTaskStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    data_dir_ = tmp_.path() + "/data";
    OpenStore();
  }

  SqliteStoreOptions Options() const {
    SqliteStoreOptions options;
    options.data_dir = data_dir_;
    options.clock = &clock_;
    options.reader_connections = 2;
    options.inline_blob_max_bytes = kInlineMax;
    return options;
  }

  void OpenStore() {
    store_.reset();
    VT_ASSERT_OK_AND_ASSIGN(store_, SqliteTaskStore::Open(Options()));
  }

  Task MakeTask(absl::string_view id, absl::string_view stub = "") {
    return MakeTestTask(id, stub, clock_.Now());
  }
  static NewTask New(Task t, std::string bytes = "") {
    return MakeNewTask(std::move(t), std::move(bytes));
  }
  Task InsertOk(Task t, std::string bytes = "") {
    return InsertTaskOk(*store_, std::move(t), std::move(bytes));
  }
  absl::StatusOr<InsertResult> InsertOne(Task t, std::string bytes = "") {
    return InsertOneTask(*store_, std::move(t), std::move(bytes));
  }

  ::videotask::testing::TempDir tmp_;
  std::string data_dir_;
  FakeClock clock_;
  std::unique_ptr<SqliteTaskStore> store_;
};

// The SQLite store under the conformance suite (store_conformance.cc).
class SqliteHarness final : public StoreHarness {
 public:
  absl::StatusOr<std::unique_ptr<TaskStore>> Open(const Clock* clock) override {
    SqliteStoreOptions options;
    options.data_dir = tmp_.path() + "/data";
    options.clock = clock;
    options.reader_connections = 2;
    options.inline_blob_max_bytes = kConformanceInlineMax;
    VT_ASSIGN_OR_RETURN(std::unique_ptr<SqliteTaskStore> store, SqliteTaskStore::Open(options));
    blob_path_prefix_ = store->BlobFilePath(std::string(64, '0'));
    blob_path_prefix_.resize(blob_path_prefix_.size() - 64 - 3);  // ".../blobs/"
    return std::unique_ptr<TaskStore>(std::move(store));
  }
  bool ReleasesLeasesOnOpen() const override { return true; }
  bool HasBlobOutsideDatabase(const std::string& sha256) const override {
    return FileExists(absl::StrCat(blob_path_prefix_, sha256.substr(0, 2), "/", sha256));
  }

 private:
  ::videotask::testing::TempDir tmp_;
  std::string blob_path_prefix_;
};

INSTANTIATE_TEST_SUITE_P(
    Sqlite, TaskStoreConformanceTest,
    ::testing::Values(StoreParam{"Sqlite", [] { return std::make_unique<SqliteHarness>(); }}),
    StoreParamName);

// SQLite-only behaviour: the file layout, the process lock, group commit.

TEST_F(SqliteTaskStoreTest, SmallBlobsInlineLargeBlobsAsFiles) {
  std::string small(kInlineMax, 's');
  std::string large(kInlineMax + 1, 'L');
  Task a = MakeTask("a");
  a.image_sha256 = Sha256Hex(small);
  a.image_size_bytes = static_cast<int64_t>(small.size());
  InsertOk(a, small);
  Task b = MakeTask("b");
  b.image_sha256 = Sha256Hex(large);
  b.image_size_bytes = static_cast<int64_t>(large.size());
  InsertOk(b, large);

  EXPECT_FALSE(FileExists(store_->BlobFilePath(a.image_sha256)));
  EXPECT_TRUE(FileExists(store_->BlobFilePath(b.image_sha256)));
  VT_ASSERT_OK_AND_ASSIGN(std::string got_small, store_->ReadImage(a.image_sha256));
  EXPECT_EQ(got_small, small);
  VT_ASSERT_OK_AND_ASSIGN(std::string got_large, store_->ReadImage(b.image_sha256));
  EXPECT_EQ(got_large, large);
  EXPECT_THAT(store_->ReadImage(std::string(64, '0')),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("not stored")));
  EXPECT_THAT(store_->ReadImage("../etc/passwd"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hex")));
}

TEST_F(SqliteTaskStoreTest, ReopenKeepsTasksAndReleasesLeases) {
  std::string image(kInlineMax * 3, 'i');
  Task a = MakeTask("a");
  a.image_sha256 = Sha256Hex(image);
  a.spec.labels = {{"k", "v"}};
  a = InsertOk(a, image);
  InsertOk(MakeTask("b"));
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> claimed,
                          store_->ClaimQueued("mock", 10, clock_.Now(), "engine-1",
                                              clock_.Now() + absl::Hours(1)));
  ASSERT_EQ(claimed.size(), 2u);

  OpenStore();
  VT_ASSERT_OK_AND_ASSIGN(Task got, store_->Get("a"));
  EXPECT_EQ(got.state, TaskState::kSubmitting);
  EXPECT_EQ(got.lease_owner, "");
  EXPECT_EQ(got.lease_expiry, absl::InfinitePast());
  EXPECT_EQ(got.spec.labels, a.spec.labels);
  EXPECT_EQ(got.version, claimed[0].id == "a" ? claimed[0].version : claimed[1].version);
  VT_ASSERT_OK_AND_ASSIGN(std::string bytes, store_->ReadImage(a.image_sha256));
  EXPECT_EQ(bytes, image);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> recover,
                          store_->ListRecoverable("engine-2", clock_.Now()));
  EXPECT_EQ(recover.size(), 2u);
  ListQuery q;
  q.labels = {{"k", "v"}};
  VT_ASSERT_OK_AND_ASSIGN(ListPage page, store_->List(q));
  ASSERT_EQ(page.tasks.size(), 1u);
  EXPECT_EQ(page.tasks[0].id, "a");
  // Stubs stay unique across a reopen.
  EXPECT_EQ(InsertOk(MakeTask("c", "a_video")).target_filename_stub, "a_video_2");
}

TEST_F(SqliteTaskStoreTest, TheLogIsCheckpointedEveryWalCheckpointPages) {
  store_.reset();
  SqliteStoreOptions options = Options();
  options.wal_checkpoint_pages = 64;
  options.wal_size_limit_bytes = 0;  // truncated after each checkpoint
  VT_ASSERT_OK_AND_ASSIGN(store_, SqliteTaskStore::Open(options));
  // One commit each, a page of every index and table each: many times
  // the interval in all.
  int64_t largest = 0;
  for (int i = 0; i < 100; ++i) {
    InsertOk(MakeTask(absl::StrCat("t", i)));
    largest = std::max(largest, static_cast<int64_t>(FileSizeOf(store_->database_path() + "-wal")));
  }
  EXPECT_GT(largest, 16 * 4096) << "the log never reached a quarter of the interval";
  // 64 pages and the commit that crossed them, with its headers.
  EXPECT_LE(largest, 2 * 64 * (4096 + 24) + 32) << "the log outgrew its checkpoint interval";
}

TEST_F(SqliteTaskStoreTest, RefusesAWalCheckpointIntervalBelowOnePage) {
  store_.reset();
  SqliteStoreOptions options = Options();
  options.wal_checkpoint_pages = 0;
  EXPECT_THAT(SqliteTaskStore::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("wal_checkpoint_pages")));
}

TEST_F(SqliteTaskStoreTest, SecondOpenOfTheSameDirFails) {
  EXPECT_THAT(SqliteTaskStore::Open(Options()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("is in use by another videotaskd process")));
  store_.reset();  // releases the lock
  VT_EXPECT_OK(SqliteTaskStore::Open(Options()).status());
}

TEST_F(SqliteTaskStoreTest, RefusesADatabaseFromANewerBinary) {
  std::string path = store_->database_path();
  store_.reset();
  {
    VT_ASSERT_OK_AND_ASSIGN(sqlite::Database db,
                            sqlite::Database::Open(path, SQLITE_OPEN_READWRITE));
    VT_ASSERT_OK(db.ExecScript("PRAGMA user_version = 42"));
  }
  EXPECT_THAT(SqliteTaskStore::Open(Options()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("newer than this binary")));
  // The refusal released the lock: fix the file and open again.
  {
    VT_ASSERT_OK_AND_ASSIGN(sqlite::Database db,
                            sqlite::Database::Open(path, SQLITE_OPEN_READWRITE));
    VT_ASSERT_OK(db.ExecScript(absl::StrCat("PRAGMA user_version = ", LatestSchemaVersion())));
  }
  VT_EXPECT_OK(SqliteTaskStore::Open(Options()).status());
}

TEST_F(SqliteTaskStoreTest, GroupCommitSharesTransactions) {
  // Hold the writer inside the first op's callback until every other op is
  // queued, so the rest must share transactions.
  absl::Notification release_writer;
  absl::Notification first_done;
  std::vector<NewTask> first;
  first.push_back(New(MakeTask("first")));
  store_->InsertAsync(std::move(first), [&](InsertResults r) {
    EXPECT_THAT(r.at(0), IsOk());
    first_done.Notify();
    release_writer.WaitForNotification();
  });
  first_done.WaitForNotification();
  const SqliteStoreStats before = store_->stats();

  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  absl::Mutex mu;
  int completed = 0;
  int already_exists = 0;
  int other_errors = 0;
  absl::Notification all_done;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Task task = MakeTask(absl::StrCat("g", t, "_", i), "same_video");
        if (i == 0) {  // one request from 8 threads, same spec: 1 created
          task.request_id = "same-spec";
          task.spec.prompt_text = "shared";
        } else if (i == 1) {  // one request from 8 threads, 8 specs: 7 refused
          task.request_id = "other-spec";
        }
        task.spec_fingerprint = SpecFingerprint(task.spec, "");
        std::vector<NewTask> batch;
        batch.push_back(New(std::move(task)));
        store_->InsertAsync(std::move(batch), [&](InsertResults r) {
          absl::MutexLock lock(&mu);
          if (absl::IsAlreadyExists(r.at(0).status())) {
            ++already_exists;
          } else if (!r.at(0).ok()) {
            ++other_errors;
          }
          if (++completed == kThreads * kPerThread) all_done.Notify();
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  release_writer.Notify();
  all_done.WaitForNotification();
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(already_exists, kThreads - 1);
    EXPECT_EQ(other_errors, 0);
  }
  const SqliteStoreStats after = store_->stats();
  EXPECT_EQ(before.ops, 1);  // the held op
  EXPECT_EQ(after.ops - before.ops, kThreads * kPerThread);
  EXPECT_LE(after.commits - before.commits, 2) << "ops were not grouped";
  EXPECT_LT(after.commits, after.ops);

  ListQuery all;
  all.page_size = 1000;
  VT_ASSERT_OK_AND_ASSIGN(ListPage page, store_->List(all));
  std::set<std::string> stubs;
  for (const Task& t : page.tasks) stubs.insert(t.target_filename_stub);
  // first + (8 * 23 plain) + 1 same-spec + 1 other-spec
  EXPECT_EQ(page.tasks.size(), 1u + kThreads * (kPerThread - 2) + 2u);
  EXPECT_EQ(stubs.size(), page.tasks.size()) << "stubs must be unique";
}

TEST_F(SqliteTaskStoreTest, BlockingWriteFromDoneCallbackIsRefused) {
  absl::Notification done;
  absl::Status from_callback;
  std::vector<NewTask> batch;
  batch.push_back(New(MakeTask("t")));
  store_->InsertAsync(std::move(batch), [&](InsertResults r) {
    Task t = r.at(0).ok() ? r.at(0)->task : Task();
    from_callback = store_->Update(t).status();
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_THAT(from_callback, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("callback")));
}

// The plan of `sql` on `db`, its steps joined by " | ".
std::string PlanOf(sqlite::Database& db, const std::string& sql) {
  absl::StatusOr<sqlite::Query> q = db.Prepare(absl::StrCat("EXPLAIN QUERY PLAN ", sql));
  if (!q.ok()) return q.status().ToString();
  std::vector<std::string> steps;
  for (absl::StatusOr<bool> row = (*q)->Step(); row.ok() && *row; row = (*q)->Step()) {
    steps.push_back((*q)->ColumnText(3));
  }
  return absl::StrJoin(steps, " | ");
}

// Every statement of the tasks table reads the index it was written for,
// without sorting the rows it walks, under the statistics of a large store
// (1,000,000 tasks, 850,000 of them ended, 150,000 queued: the figures
// PRAGMA optimize wrote for scripts/bench's list table), of a backlog
// (900,000 queued) and with none, as before a store's first clean close.
// Left to itself, SQLite's planner took a state range of tasks_state_list
// for the unattended ones there and read or sorted every matching row on
// each run: at that size 1.6 s on the writer per retention batch, and the
// waiting-followers scan (the dispatcher, every half lease) read each
// QUEUED task from the table, 0.14 s warm and 2.4 s cold at 150,000.
TEST_F(SqliteTaskStoreTest, EveryStatementReadsItsIndexAtScale) {
  store_.reset();
  {
    VT_ASSERT_OK_AND_ASSIGN(
        sqlite::Database db,
        sqlite::Database::Open(data_dir_ + "/videotask.db", SQLITE_OPEN_READWRITE));
    const internal::TaskStatements sql(internal::Dialect::Sqlite());
    const std::string by_id = "INDEX sqlite_autoindex_tasks_1 (id=?)";
    struct Statement {
      const std::string& text;
      std::string index;       // in the plan; "" for a plain INSERT (no plan)
      const char* sort = "";   // a sort allowed, over the index's rows only
    };
    const std::string oldest_queued = internal::OldestQueuedSql(internal::Dialect::Sqlite());
    const std::string insert_labels = sql.InsertLabels(2);
    const std::vector<Statement> statements = {
        {sql.insert, ""},
        {insert_labels, "SCAN 2 CONSTANT ROWS"},
        {sql.select_by_id, by_id},
        {sql.select_by_request_id, "INDEX tasks_request_id (request_id=?)"},
        {sql.update, by_id},
        {sql.read_back, by_id},
        {sql.version_of, by_id},
        {sql.claim_one, by_id},
        {sql.delete_one, by_id},
        {sql.list_recoverable, "INDEX tasks_recoverable"},
        {sql.renew, "INDEX tasks_leased (lease_owner=?)"},
        {sql.next_queued, "INDEX tasks_queued_next (backend=?)"},
        {sql.image_in_use, "INDEX tasks_kept_image (image_sha256=?)"},
        {sql.read_blob, "INDEX sqlite_autoindex_blobs_1 (sha256=?)"},
        {sql.delete_blob, "INDEX sqlite_autoindex_blobs_1 (sha256=?)"},
        {sql.stub_counter, "PRIMARY KEY (base=?)"},
        {sql.forget_stub_counter, "INDEX tasks_stub (target_filename_stub=?)"},
        {sql.delete_ended, "INDEX tasks_ended (end_time<?)"},
        {sql.list_kept_outputs, "INDEX tasks_output_kept (end_time<?)"},
        {sql.claim_callers, "INDEX tasks_caller_claim (backend=? AND caller>?)"},
        {sql.claim_active, "INDEX tasks_caller_active (backend=?)"},
        {sql.claim_head, "INDEX tasks_caller_claim (backend=? AND caller=?)"},
        {sql.count_queued_of, "INDEX tasks_caller_queued (caller=?)"},
        // The rows of one reuse key, newest first within each kind.
        {sql.find_identical, "INDEX tasks_reuse_key (reuse_key=?)",
         "USE TEMP B-TREE FOR RIGHT PART OF ORDER BY"},
        {sql.list_followers_of, "INDEX tasks_followers (reused_from=?)"},
        // Only the QUEUED followers, oldest first.
        {sql.list_followers, "INDEX tasks_followers", "USE TEMP B-TREE FOR ORDER BY"},
        {oldest_queued, "INDEX tasks_caller_claim (backend=?)"},
    };
    const std::string large_store =
        "ANALYZE;\n"
        "DELETE FROM sqlite_stat1;\n"
        "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES\n"
        "  ('tasks', 'sqlite_autoindex_tasks_1', '1000000 1'),\n"
        "  ('tasks', 'tasks_stub', '1000000 1'),\n"
        "  ('tasks', 'tasks_list', '1000000 1 1'),\n"
        "  ('tasks', 'tasks_state_list', '1000000 250000 1 1'),\n"
        "  ('tasks', 'tasks_backend_list', '1000000 250000 1 1'),\n"
        "  ('tasks', 'tasks_caller_list', '1000000 250000 1 1'),\n"
        "  ('tasks', 'tasks_ended', '850379 1 1'),\n"
        "  ('tasks', 'tasks_queued_next', '149621 37406 37406'),\n"
        "  ('tasks', 'tasks_caller_queued', '149621 37406'),\n"
        "  ('tasks', 'tasks_caller_claim', '149621 37406 9352 9352 1 1');\n"
        "ANALYZE sqlite_schema;\n";
    const std::string backlog =
        "DELETE FROM sqlite_stat1;\n"
        "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES\n"
        "  ('tasks', 'sqlite_autoindex_tasks_1', '1000000 1'),\n"
        "  ('tasks', 'tasks_stub', '1000000 1'),\n"
        "  ('tasks', 'tasks_list', '1000000 1 1'),\n"
        "  ('tasks', 'tasks_state_list', '1000000 500000 1 1'),\n"
        "  ('tasks', 'tasks_backend_list', '1000000 250000 1 1'),\n"
        "  ('tasks', 'tasks_caller_list', '1000000 250000 1 1'),\n"
        "  ('tasks', 'tasks_ended', '90000 1 1'),\n"
        "  ('tasks', 'tasks_queued_next', '900000 225000 225000'),\n"
        "  ('tasks', 'tasks_caller_queued', '900000 225000'),\n"
        "  ('tasks', 'tasks_caller_claim', '900000 225000 56250 56250 1 1');\n"
        "ANALYZE sqlite_schema;\n";
    const std::string no_statistics = "DELETE FROM sqlite_stat1;\nANALYZE sqlite_schema;\n";
    for (const std::string& statistics : {large_store, backlog, no_statistics}) {
      VT_ASSERT_OK(db.ExecScript(statistics));
      for (const Statement& statement : statements) {
        const std::string plan = PlanOf(db, statement.text);
        SCOPED_TRACE(absl::StrCat(statement.text, "\n", plan));
        if (statement.index.empty()) {
          EXPECT_EQ(plan, "");
          continue;
        }
        EXPECT_THAT(plan, HasSubstr(statement.index));
        EXPECT_THAT(plan, Not(::testing::ContainsRegex("SCAN tasks( \\||$)")));
        std::string rest = plan;
        if (*statement.sort != '\0') absl::StrReplaceAll({{statement.sort, ""}}, &rest);
        EXPECT_THAT(rest, Not(HasSubstr("TEMP B-TREE")));
      }
    }
  }
  // The store still opens on it. The oldest is the oldest of the backend
  // whatever its caller and priority, which the index orders first
  // (retention's answers are the conformance suite's).
  OpenStore();
  Task older = MakeTask("q-older");
  older.create_time = clock_.Now() - absl::Minutes(5);
  InsertOk(older);
  Task newer = MakeTask("q-newer");
  newer.spec.priority = 9;
  newer.caller = "bob";
  InsertOk(newer);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<OldestQueued> oldest, store_->OldestQueuedTimes());
  ASSERT_EQ(oldest.size(), 1u);
  EXPECT_EQ(oldest[0].backend, older.spec.backend);
  EXPECT_EQ(oldest[0].create_time, older.create_time);
  VT_ASSERT_OK(store_->DeleteEnded(clock_.Now(), 10).status());
}

// A transition's UPDATE and a claim's run on the writer for every step of
// every task. On SQLite, RETURNING first copies the changed row into a
// temporary b-tree opened and freed per statement (EXPLAIN's OpenEphemeral),
// so the row is read back by id after the UPDATE instead; the read finds
// nothing when the UPDATE changed nothing, as RETURNING would.
TEST_F(SqliteTaskStoreTest, TransitionsReadTheirRowBackWithoutATemporaryTable) {
  InsertOk(MakeTask("t1"));
  store_.reset();
  VT_ASSERT_OK_AND_ASSIGN(sqlite::Database db, sqlite::Database::Open(data_dir_ + "/videotask.db",
                                                                      SQLITE_OPEN_READWRITE));
  const internal::TaskStatements sql(internal::Dialect::Sqlite());
  for (const std::string* statement : {&sql.update, &sql.claim_one, &sql.read_back}) {
    VT_ASSERT_OK_AND_ASSIGN(sqlite::Query q, db.Prepare(absl::StrCat("EXPLAIN ", *statement)));
    std::vector<std::string> opcodes;
    for (absl::StatusOr<bool> row = q->Step(); row.ok() && *row; row = q->Step()) {
      opcodes.push_back(q->ColumnText(1));
    }
    EXPECT_THAT(opcodes, Not(Contains("OpenEphemeral"))) << *statement;
    EXPECT_THAT(*statement, Not(HasSubstr("RETURNING")));
  }
  auto read_back = [&]() -> int {
    absl::StatusOr<sqlite::Query> q = db.Prepare(sql.read_back);
    EXPECT_TRUE(q.ok());
    EXPECT_TRUE((*q)->BindText(1, "t1").ok());
    int rows = 0;
    for (absl::StatusOr<bool> row = (*q)->Step(); row.ok() && *row; row = (*q)->Step()) ++rows;
    return rows;
  };
  VT_ASSERT_OK(db.ExecScript("UPDATE tasks SET progress = 0.5 WHERE id = 't1';"));
  EXPECT_EQ(read_back(), 1);
  VT_ASSERT_OK(db.ExecScript("UPDATE tasks SET progress = 0.5 WHERE id = 't1' AND version = -1;"));
  EXPECT_EQ(read_back(), 0);
}

// Each List filter alone, first page or after a cursor, reads one index
// range in list order: no table scan, no sort of the matching rows.
TEST_F(SqliteTaskStoreTest, ListPlansReadOneIndexRangeInListOrder) {
  Task t = MakeTask("t1");
  t.spec.labels = {{"team", "a"}};
  InsertOk(t);
  struct Case {
    const char* name;
    ListQuery query;
    const char* index;
  };
  auto query = [](auto set) {
    ListQuery q;
    set(q);
    return q;
  };
  const std::vector<Case> cases = {
      {"none", ListQuery(), "tasks_list"},
      {"state", query([](ListQuery& q) { q.states = {TaskState::kQueued}; }), "tasks_state_list"},
      {"states",
       query([](ListQuery& q) { q.states = {TaskState::kFailed, TaskState::kCancelled}; }),
       "tasks_state_list"},
      {"backend", query([](ListQuery& q) { q.backend = "mock"; }), "tasks_backend_list"},
      {"caller", query([](ListQuery& q) { q.caller = "alice"; }), "tasks_caller_list"},
      {"label", query([](ListQuery& q) { q.labels = {{"team", "a"}}; }), "task_labels_list"},
      {"label and state", query([](ListQuery& q) {
         q.labels = {{"team", "a"}};
         q.states = {TaskState::kQueued, TaskState::kFailed};
       }),
       "task_labels_list"},
  };
  for (Case c : cases) {
    for (bool after : {false, true}) {
      if (after) c.query.after = ListCursor{clock_.Now(), "t9"};
      VT_ASSERT_OK_AND_ASSIGN(std::vector<std::string> plan, store_->ExplainList(c.query));
      const std::string text = absl::StrJoin(plan, "\n");
      SCOPED_TRACE(absl::StrCat(c.name, after ? " after a cursor" : "", ":\n", text));
      EXPECT_THAT(text, ::testing::ContainsRegex(absl::StrCat(" INDEX ", c.index, "( |$)")));
      // Several states: one range per state, each a page at most, merged
      // (SQLite sorts each branch's page for the merge, not the rows).
      if (c.query.states.size() < 2 || !c.query.labels.empty()) {
        EXPECT_THAT(text, Not(HasSubstr("TEMP B-TREE FOR ORDER BY")));
      }
      EXPECT_THAT(text, Not(::testing::ContainsRegex("SCAN tasks$|SCAN tasks\n")));
    }
    // The statement the plan is of is the one List runs.
    VT_ASSERT_OK(store_->List(c.query).status());
  }
}

}  // namespace
}  // namespace videotask::store
