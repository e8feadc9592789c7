// The store core shared by every engine, without an engine: the row codec,
// the dialects and the helpers. What the core does on a real database is
// covered by the conformance suite (store_conformance.cc) on each store.
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/store/dialect.h"
#include "server/store/reuse_key.h"
#include "server/store/schema.h"
#include "server/store/store_util.h"
#include "server/store/task_row.h"
#include "server/store/task_rows.h"
#include "server/store/task_sql.h"
#include "tests/testing/status_matchers.h"

namespace videotask::store::internal {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::videotask::testing::StatusIs;

// One row held in memory: what a writer binds, a reader reads back.
using Value = std::variant<std::monostate, int64_t, double, std::string>;

class MemoryRow final : public RowWriter, public RowReader {
 public:
  RowWriter& Null() override { return Add(std::monostate()); }
  RowWriter& Int(int64_t value) override { return Add(value); }
  RowWriter& Double(double value) override { return Add(value); }
  RowWriter& Text(absl::string_view value) override { return Add(std::string(value)); }
  RowWriter& Blob(absl::string_view value) override { return Add(std::string(value)); }

  bool IsNull(int column) const override {
    return std::holds_alternative<std::monostate>(values_.at(column));
  }
  int64_t Int(int column) const override {
    const Value& v = values_.at(column);
    return std::holds_alternative<int64_t>(v) ? std::get<int64_t>(v) : 0;
  }
  double Double(int column) const override { return std::get<double>(values_.at(column)); }
  std::string Text(int column) const override { return std::get<std::string>(values_.at(column)); }

  size_t size() const { return values_.size(); }

 private:
  RowWriter& Add(Value v) {
    values_.push_back(std::move(v));
    return *this;
  }
  std::vector<Value> values_;
};

// The reading side of a MemoryRow (its writer has methods of the same names).
const RowReader& Read(const MemoryRow& row) { return row; }

Task FullTask() {
  Task t;
  t.id = "t1";
  t.request_id = "req-1";
  t.spec.backend = "mock";
  t.spec.model = "gen4_turbo";
  t.spec.image.source = ImageSource::kServerPath;
  t.spec.image.server_path = "/in/a.png";
  t.spec.image.filename = "a.png";
  t.spec.image.mime_type = "image/png";
  t.spec.prompt_text = "zoom \"in\"";
  t.spec.ratio = "1280:720";
  t.spec.duration_seconds = 5;
  t.spec.seed = 4'000'000'000u;
  t.spec.target_filename_stub = "a";
  t.spec.labels = {{"team", "a"}, {"env", "prod"}};
  t.spec.priority = -3;
  t.spec.public_figure_threshold = "low";
  t.state = TaskState::kRunning;
  t.provider_task_id = "p1";
  t.provider_status = "RUNNING";
  t.progress = 0.25f;
  t.target_filename_stub = "a_2";
  t.output_urls = {"https://x/1", "https://x/2"};
  t.error.code = "E";
  t.error.retryable = true;
  t.attempt_count = 2;
  t.image_sha256 = std::string(64, 'a');
  t.image_size_bytes = 1234;
  t.create_time = absl::FromUnixMicros(1'700'000'000'000'001);
  t.update_time = t.create_time + absl::Seconds(1);
  t.next_attempt_time = absl::InfiniteFuture();
  t.lease_owner = "me";
  t.lease_expiry = t.create_time + absl::Minutes(1);
  t.provider_cancel_pending = true;
  t.spec_fingerprint = "fp";
  t.version = 7;
  t.output_removed_time = t.create_time + absl::Hours(2);
  t.reuse_key = "key";
  t.reused_from = "t0";
  return t;
}

TEST(TaskRowTest, EveryColumnRoundTrips) {
  const Task t = FullTask();
  MemoryRow row;
  WriteTaskRow(t, row);
  ASSERT_EQ(row.size(), static_cast<size_t>(kNumColumns));
  EXPECT_TRUE(row.IsNull(kStartTime));  // unset times are NULL
  EXPECT_EQ(Read(row).Int(kNextAttemptTime), kFutureMicros);
  VT_ASSERT_OK_AND_ASSIGN(Task back, ReadTaskRow(row));
  EXPECT_EQ(back.id, t.id);
  EXPECT_EQ(back.spec.seed, t.spec.seed);
  EXPECT_EQ(back.spec.labels, t.spec.labels);
  EXPECT_EQ(back.spec.image.source, t.spec.image.source);
  EXPECT_EQ(back.state, t.state);
  EXPECT_FLOAT_EQ(back.progress, t.progress);
  EXPECT_EQ(back.output_urls, t.output_urls);
  EXPECT_EQ(back.error.retryable, t.error.retryable);
  EXPECT_EQ(back.create_time, t.create_time);
  EXPECT_EQ(back.start_time, absl::InfinitePast());
  EXPECT_EQ(back.next_attempt_time, absl::InfiniteFuture());
  EXPECT_EQ(back.lease_expiry, t.lease_expiry);
  EXPECT_TRUE(back.provider_cancel_pending);
  EXPECT_EQ(back.version, t.version);
  EXPECT_EQ(back.output_removed_time, t.output_removed_time);
  EXPECT_EQ(back.reuse_key, "key");
  EXPECT_EQ(back.reused_from, "t0");
}

TEST(ReuseKeyTest, CoversWhatMakesTasksIdenticalAndNothingElse) {
  Task t;
  t.spec.backend = "runway";
  t.spec.model = "gen4_turbo";
  t.spec.image.source = ImageSource::kContent;
  t.image_sha256 = "abc";
  t.spec.prompt_text = "pan left";
  t.spec.ratio = "1280:720";
  t.spec.duration_seconds = 4;
  const std::string key = ReuseKey(t);
  EXPECT_EQ(key.size(), 64u);
  Task other = t;
  other.id = "x";
  other.spec.labels = {{"k", "v"}};
  other.spec.priority = 9;
  other.spec.target_filename_stub = "s";
  other.spec.image.filename = "other.png";
  other.request_id = "r";
  EXPECT_EQ(ReuseKey(other), key);
  other = t;
  other.spec.seed = 0;  // set (to 0) is not unset
  EXPECT_NE(ReuseKey(other), key);
  other = t;
  other.spec.model_options = {{"k", "v"}};
  EXPECT_NE(ReuseKey(other), key);
  other = t;
  other.spec.duration_seconds = 5;
  EXPECT_NE(ReuseKey(other), key);
  other = t;
  other.spec.image.source = ImageSource::kUri;  // no digest at submit
  EXPECT_EQ(ReuseKey(other), "");
  EXPECT_THAT(SchemaReuseKey(Dialect::Postgres()),
              HasSubstr("ALTER TABLE tasks ADD COLUMN reuse_key TEXT NOT NULL DEFAULT ''"));
}

TEST(TaskRowTest, BadStoredValuesAreInternalErrors) {
  Task t = FullTask();
  MemoryRow bad_state;
  t.state = static_cast<TaskState>(9);
  WriteTaskRow(t, bad_state);
  EXPECT_THAT(ReadTaskRow(bad_state).status(),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("bad state")));
}

TEST(TaskRowTest, StoredLabelsParseBackOrFailClearly) {
  const std::map<std::string, std::string> labels = {
      {"team", "t3"}, {"note", "a \"q\" \u00e9"}, {"e", ""}};
  std::optional<std::string> json = LabelsToJson(labels);
  ASSERT_TRUE(json.has_value());
  std::map<std::string, std::string> back;
  VT_ASSERT_OK(ParseLabels(*json, back));
  EXPECT_EQ(back, labels);
  back.clear();
  VT_ASSERT_OK(ParseLabels(R"({"k":"first","k":"last"})", back));
  EXPECT_EQ(back, (std::map<std::string, std::string>{{"k", "last"}}));
  for (const char* bad : {"", "[]", "\"text\"", "{\"k\":\"v\"", "{\"k\":\"v\"} x", "nul"}) {
    back.clear();
    EXPECT_THAT(ParseLabels(bad, back),
                StatusIs(absl::StatusCode::kInternal, "stored labels are not a JSON object"))
        << bad;
  }
  for (const char* bad : {R"({"k":1})", R"({"k":null})", R"({"k":{"x":"y"}})", R"({"k":["v"]})",
                          R"({"k":true})", R"({"a":"b","k":2.5})"}) {
    back.clear();
    EXPECT_THAT(ParseLabels(bad, back),
                StatusIs(absl::StatusCode::kInternal, "stored label value is not a string"))
        << bad;
  }
}

TEST(TaskRowTest, UpdateBindsIdVersionThenTheMutableColumns) {
  MemoryRow row;
  WriteTaskUpdate(FullTask(), row);
  // The parameters of TaskStatements::update: id, version, then each
  // updated column.
  ASSERT_EQ(row.size(), 2 + std::size(kUpdatedColumns));
  EXPECT_EQ(Read(row).Text(0), "t1");
  EXPECT_EQ(Read(row).Int(1), 7);
  EXPECT_EQ(Read(row).Text(18), "me");  // ?19: the lease owner
}

TEST(DialectTest, PlaceholdersAndCasts) {
  EXPECT_EQ(Dialect::Sqlite().Param(3, "bigint"), "?3");
  EXPECT_EQ(Dialect::Postgres().Param(3), "$3");
  EXPECT_EQ(Dialect::Postgres().Param(3, "bigint"), "$3::bigint");
  EXPECT_EQ(Dialect::Sqlite().ColumnType(SqlType::kBlob), "BLOB");
  EXPECT_EQ(Dialect::Postgres().ColumnType(SqlType::kBlob), "BYTEA");
  EXPECT_EQ(Dialect::Sqlite().ColumnType(SqlType::kBigInt), "INTEGER");
  EXPECT_EQ(Dialect::Postgres().ColumnType(SqlType::kKey), "TEXT COLLATE \"C\"");
  EXPECT_EQ(Dialect::Sqlite().IndexedBy("tasks", "tasks_ended"), "tasks INDEXED BY tasks_ended");
  EXPECT_EQ(Dialect::Postgres().IndexedBy("tasks", "tasks_ended"), "tasks");
}

TEST(TaskStatementsTest, RenderedOncePerDialect) {
  const TaskStatements sqlite(Dialect::Sqlite());
  const TaskStatements pg(Dialect::Postgres());
  EXPECT_THAT(sqlite.update, HasSubstr("lease_owner = ?19,"));
  EXPECT_THAT(pg.update, HasSubstr("lease_owner = $19::text,"));
  // One parameter per column: the last is ?kNumColumns.
  EXPECT_THAT(sqlite.insert, HasSubstr(absl::StrCat("?", kNumColumns, ")")));
  EXPECT_THAT(pg.insert, HasSubstr(absl::StrCat("$", kNumColumns, ")")));
  // PostgreSQL returns a transition's row; SQLite reads it back (its
  // RETURNING fills a temporary b-tree first).
  EXPECT_THAT(pg.update, HasSubstr(" RETURNING id, "));
  EXPECT_THAT(pg.claim_one, HasSubstr(" RETURNING id, "));
  EXPECT_EQ(pg.read_back, "");
  EXPECT_THAT(sqlite.read_back, HasSubstr("WHERE id = ?1 AND changes() = 1"));
  EXPECT_THAT(pg.delete_ended, HasSubstr("FOR UPDATE SKIP LOCKED"));
  EXPECT_THAT(sqlite.delete_ended, Not(HasSubstr("SKIP LOCKED")));
  EXPECT_THAT(pg.InsertLabels(2), HasSubstr("($1, $2, $3, $4), ($1, $2, $5, $6)"));
  EXPECT_THAT(sqlite.ClaimSet("t."), HasSubstr("COALESCE(t.start_time, ?4)"));
  for (const std::string* sql : {&sqlite.insert, &sqlite.update, &sqlite.list_recoverable}) {
    EXPECT_THAT(*sql, Not(HasSubstr("$"))) << *sql;
  }
}

TEST(SchemaTest, DialectsDifferOnlyInTypesAndKeys) {
  const std::string sqlite = SchemaV1(Dialect::Sqlite());
  const std::string pg = SchemaV1(Dialect::Postgres());
  EXPECT_THAT(sqlite, HasSubstr("  data BLOB NOT NULL\n"));
  EXPECT_THAT(pg, HasSubstr("  data BYTEA NOT NULL\n"));
  EXPECT_THAT(sqlite, HasSubstr(") WITHOUT ROWID;"));
  EXPECT_THAT(pg, Not(HasSubstr("WITHOUT ROWID")));
  EXPECT_THAT(pg, HasSubstr("target_filename_stub TEXT COLLATE \"C\" NOT NULL"));
  EXPECT_THAT(pg, HasSubstr("next_attempt_time NULLS FIRST"));
  for (int c = 0; c < kNumColumns; ++c) {
    if (c >= kV1Columns) continue;  // added by later steps
    EXPECT_THAT(sqlite, HasSubstr(absl::StrCat("  ", TaskColumnName(c), " "))) << c;
  }
  EXPECT_THAT(SchemaV2(Dialect::Sqlite()), HasSubstr("model_options_json"));
  EXPECT_THAT(SchemaV2(Dialect::Sqlite()), Not(HasSubstr("attempts_json")));
  EXPECT_THAT(SchemaV2(Dialect::Sqlite()), Not(HasSubstr("output_removed_time")));
  const std::string later = SchemaAttemptsAndPauses(Dialect::Postgres());
  EXPECT_THAT(later, HasSubstr("ALTER TABLE tasks ADD COLUMN attempts_json TEXT;"));
  EXPECT_THAT(later, HasSubstr("CREATE TABLE backend_pauses (\n  backend TEXT PRIMARY KEY NOT NULL"));
  EXPECT_THAT(later, HasSubstr("since BIGINT NOT NULL"));
  EXPECT_THAT(SchemaRetention(Dialect::Postgres()),
              HasSubstr("ADD COLUMN output_removed_time BIGINT"));
  EXPECT_THAT(SchemaV2(Dialect::Sqlite()), Not(HasSubstr("caller")));
  EXPECT_THAT(SchemaCallers(Dialect::Postgres()),
              HasSubstr("ADD COLUMN caller TEXT NOT NULL DEFAULT 'anonymous'"));
  EXPECT_THAT(SchemaCallers(Dialect::Sqlite()), HasSubstr("tasks_caller_claim"));
}

TEST(SchemaTest, VersionChecks) {
  VT_EXPECT_OK(CheckSchemaVersion(1, 1));
  EXPECT_THAT(CheckSchemaVersion(2, 1),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("v2 is newer")));
  EXPECT_THAT(CheckSchemaVersion(-1, 1),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("invalid")));
}

TEST(StoreUtilTest, WithContextKeepsCodeAndPayloads) {
  absl::Status status = absl::AlreadyExistsError("duplicate key");
  status.SetPayload("type.example/sqlstate", absl::Cord("23505"));
  absl::Status wrapped = WithContext(status, "insert task t1");
  EXPECT_EQ(wrapped.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(wrapped.message(), "insert task t1: duplicate key");
  ASSERT_TRUE(wrapped.GetPayload("type.example/sqlstate").has_value());
  EXPECT_EQ(*wrapped.GetPayload("type.example/sqlstate"), "23505");
  VT_EXPECT_OK(WithContext(absl::OkStatus(), "ignored"));
}

TEST(StoreUtilTest, Digests) {
  EXPECT_TRUE(IsHexDigest(std::string(64, 'f')));
  EXPECT_FALSE(IsHexDigest(std::string(64, 'F')));
  EXPECT_FALSE(IsHexDigest(std::string(63, 'a')));
  Task t;
  t.id = "t";
  VT_EXPECT_OK(CheckImageDigest(t));  // no image
  t.image_sha256 = "../etc";
  EXPECT_THAT(CheckImageDigest(t), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("image_sha256")));
  EXPECT_THAT(CheckReadDigest("xyz"), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
}

TEST(ProbeStubTest, TakesTheFirstFreeSuffixAndAdvances) {
  int64_t next = 0;
  std::vector<std::string> tried;
  auto free_from_3 = [&](const std::string& c) -> absl::StatusOr<bool> {
    tried.push_back(c);
    return c == "a_3";
  };
  VT_ASSERT_OK_AND_ASSIGN(std::string stub, ProbeStub("a", next, free_from_3));
  EXPECT_EQ(stub, "a_3");
  EXPECT_EQ(next, 4);
  EXPECT_THAT(tried, ::testing::ElementsAre("a", "a_2", "a_3"));
  next = 0;
  VT_ASSERT_OK_AND_ASSIGN(stub, ProbeStub("b", next, [](const std::string&) { return true; }));
  EXPECT_EQ(stub, "b");
  EXPECT_EQ(next, 2);
  EXPECT_THAT(ProbeStub("c", next,
                        [](const std::string&) -> absl::StatusOr<bool> {
                          return absl::UnavailableError("down");
                        })
                  .status(),
              StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
}

TEST(PickFairlyTest, PriorityFirstThenFewestSlotsThenOldest) {
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  auto at = [&](int s) { return t0 + absl::Seconds(s); };
  // alice holds 2 slots, bob none, carol 1; bob's and carol's tasks are newer.
  std::vector<CallerQueue> queues = {
      {"alice", 2, {{"a1", 0, at(1)}, {"a2", 0, at(2)}, {"a3", 0, at(3)}, {"a4", 0, at(4)}}},
      {"bob", 0, {{"b1", 0, at(10)}, {"b2", 0, at(11)}}},
      {"carol", 1, {{"c1", 3, at(20)}, {"c2", 0, at(21)}}},
  };
  // c1 (priority 3) first; then bob (0 slots), then bob again (1 < 2), then
  // the three with 2 take turns by their oldest task: a1, c2, then bob has
  // nothing left, so alice.
  EXPECT_THAT(PickFairly(queues, 10),
              ::testing::ElementsAre("c1", "b1", "b2", "a1", "c2", "a2", "a3", "a4"));
  EXPECT_THAT(PickFairly(queues, 3), ::testing::ElementsAre("c1", "b1", "b2"));
  EXPECT_TRUE(PickFairly(queues, 0).empty());
  EXPECT_TRUE(PickFairly({}, 5).empty());
  // One caller: its own order, untouched.
  EXPECT_THAT(PickFairly({queues[0]}, 2), ::testing::ElementsAre("a1", "a2"));
}

TEST(PickFairlyTest, EqualSharesTakeTurnsRoundRobin) {
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  std::vector<CallerQueue> queues;
  for (const char* caller : {"x", "y", "z"}) {
    CallerQueue q{caller, 0, {}};
    for (int i = 0; i < 3; ++i) {
      q.next.push_back({absl::StrCat(caller, i), 0, t0 + absl::Seconds(i) +
                                                      absl::Milliseconds(caller[0] - 'x')});
    }
    queues.push_back(q);
  }
  EXPECT_THAT(PickFairly(queues, 7),
              ::testing::ElementsAre("x0", "y0", "z0", "x1", "y1", "z1", "x2"));
}

}  // namespace
}  // namespace videotask::store::internal
