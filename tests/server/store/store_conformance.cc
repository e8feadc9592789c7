#include "tests/server/store/store_conformance.h"

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
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/sha256.h"
#include "server/domain/task.h"
#include "tests/testing/status_matchers.h"

namespace videotask::store {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::videotask::testing::IsOk;
using ::videotask::testing::StatusIs;

void PrintTo(const StoreParam& param, std::ostream* os) { *os << param.name; }

std::string StoreParamName(const ::testing::TestParamInfo<StoreParam>& info) {
  return info.param.name;
}

void TaskStoreConformanceTest::SetUp() {
  harness_ = GetParam().make();
  ASSERT_NE(harness_, nullptr) << "no storage for the " << GetParam().name << " store";
  OpenStore();
}

void TaskStoreConformanceTest::TearDown() {
  store_.reset();
  harness_.reset();
}

void TaskStoreConformanceTest::OpenStore() {
  store_.reset();
  VT_ASSERT_OK_AND_ASSIGN(store_, harness_->Open(&clock_));
}

Task MakeTestTask(absl::string_view id, absl::string_view stub, absl::Time now) {
  Task t;
  t.id = std::string(id);
  t.spec.backend = "mock";
  t.spec.model = "gen4_turbo";
  t.spec.image.source = ImageSource::kUri;
  t.spec.image.uri = "https://example.com/a.png";
  t.spec.image.filename = "a.png";
  t.spec.prompt_text = absl::StrCat("prompt for ", id);
  t.spec.ratio = "1280:720";
  t.spec.duration_seconds = 4;
  t.target_filename_stub = stub.empty() ? absl::StrCat(id, "_video") : std::string(stub);
  t.create_time = now;
  t.update_time = t.create_time;
  t.spec_fingerprint = SpecFingerprint(t.spec, t.image_sha256);
  return t;
}

NewTask MakeNewTask(Task t, std::string bytes) {
  NewTask n;
  n.task = std::move(t);
  n.image_bytes = std::move(bytes);
  return n;
}

absl::StatusOr<InsertResult> InsertOneTask(TaskStore& store, Task t, std::string bytes) {
  std::vector<NewTask> batch;
  batch.push_back(MakeNewTask(std::move(t), std::move(bytes)));
  InsertResults results = store.Insert(std::move(batch));
  if (results.size() != 1) return absl::InternalError("wrong result count");
  return results[0];
}

Task InsertTaskOk(TaskStore& store, Task t, std::string bytes) {
  absl::StatusOr<InsertResult> result = InsertOneTask(store, std::move(t), std::move(bytes));
  if (!result.ok()) {
    ADD_FAILURE() << result.status();
    return Task();
  }
  EXPECT_TRUE(result->created);
  return result->task;
}

Task TaskStoreConformanceTest::MakeTask(absl::string_view id, absl::string_view stub) {
  return MakeTestTask(id, stub, clock_.Now());
}

NewTask TaskStoreConformanceTest::New(Task t, std::string bytes) {
  return MakeNewTask(std::move(t), std::move(bytes));
}

Task TaskStoreConformanceTest::InsertOk(Task t, std::string bytes) {
  return InsertTaskOk(*store_, std::move(t), std::move(bytes));
}

absl::StatusOr<InsertResult> TaskStoreConformanceTest::InsertOne(Task t, std::string bytes) {
  return InsertOneTask(*store_, std::move(t), std::move(bytes));
}

void ExpectSameTask(const Task& a, const Task& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.request_id, b.request_id);
  EXPECT_EQ(a.spec.backend, b.spec.backend);
  EXPECT_EQ(a.spec.model, b.spec.model);
  EXPECT_EQ(a.spec.image.source, b.spec.image.source);
  EXPECT_EQ(a.spec.image.uri, b.spec.image.uri);
  EXPECT_EQ(a.spec.image.server_path, b.spec.image.server_path);
  EXPECT_EQ(a.spec.image.filename, b.spec.image.filename);
  EXPECT_EQ(a.spec.image.mime_type, b.spec.image.mime_type);
  EXPECT_EQ(a.spec.prompt_text, b.spec.prompt_text);
  EXPECT_EQ(a.spec.ratio, b.spec.ratio);
  EXPECT_EQ(a.spec.duration_seconds, b.spec.duration_seconds);
  EXPECT_EQ(a.spec.seed, b.spec.seed);
  EXPECT_EQ(a.spec.target_filename_stub, b.spec.target_filename_stub);
  EXPECT_EQ(a.spec.labels, b.spec.labels);
  EXPECT_EQ(a.spec.priority, b.spec.priority);
  EXPECT_EQ(a.spec.public_figure_threshold, b.spec.public_figure_threshold);
  EXPECT_EQ(a.spec.model_options, b.spec.model_options);
  EXPECT_EQ(a.spec.notify_url, b.spec.notify_url);
  EXPECT_EQ(a.spec.notify_events, b.spec.notify_events);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.provider_task_id, b.provider_task_id);
  EXPECT_EQ(a.provider_status, b.provider_status);
  EXPECT_FLOAT_EQ(a.progress, b.progress);
  EXPECT_EQ(a.target_filename_stub, b.target_filename_stub);
  EXPECT_EQ(a.output_path, b.output_path);
  EXPECT_EQ(a.output_size_bytes, b.output_size_bytes);
  EXPECT_EQ(a.output_sha256, b.output_sha256);
  EXPECT_EQ(a.error.code, b.error.code);
  EXPECT_EQ(a.error.message, b.error.message);
  EXPECT_EQ(a.error.retryable, b.error.retryable);
  EXPECT_EQ(a.error.provider_code, b.error.provider_code);
  EXPECT_EQ(a.attempt_count, b.attempt_count);
  EXPECT_EQ(a.image_sha256, b.image_sha256);
  EXPECT_EQ(a.image_size_bytes, b.image_size_bytes);
  EXPECT_EQ(a.create_time, b.create_time);
  EXPECT_EQ(a.update_time, b.update_time);
  EXPECT_EQ(a.start_time, b.start_time);
  EXPECT_EQ(a.end_time, b.end_time);
  EXPECT_EQ(a.next_attempt_time, b.next_attempt_time);
  EXPECT_EQ(a.lease_owner, b.lease_owner);
  EXPECT_EQ(a.lease_expiry, b.lease_expiry);
  EXPECT_EQ(a.provider_cancel_pending, b.provider_cancel_pending);
  EXPECT_EQ(a.output_urls, b.output_urls);
  EXPECT_EQ(a.spec_fingerprint, b.spec_fingerprint);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.output_removed_time, b.output_removed_time);
}

TEST_P(TaskStoreConformanceTest, InsertAndGetRoundTripEveryField) {
  absl::Time t0 = absl::FromUnixMicros(1'800'000'000'123'456);
  Task t;
  t.id = "01HZZZTASKROUNDTRIP0000000";
  t.request_id = "req-1";
  t.spec.backend = "runway";
  t.spec.model = "gen4_turbo";
  t.spec.image.source = ImageSource::kContent;
  t.spec.image.uri = "";
  t.spec.image.server_path = "in/photo.png";
  t.spec.image.filename = "photo_draft.png";
  t.spec.image.mime_type = "image/png";
  t.spec.prompt_text = "a slow pan, \"quoted\" and ünïcode";
  t.spec.ratio = "1280:720";
  t.spec.duration_seconds = 10;
  t.spec.seed = 4294967295u;
  t.spec.target_filename_stub = "wanted";
  t.spec.labels = {{"team", "a"}, {"quote\"", "x\ny"}};
  t.spec.priority = -3;
  t.spec.public_figure_threshold = "low";
  t.spec.model_options = {{"negative_prompt", "blur, \"text\""}, {"cfg_scale", "0.5"}};
  t.state = TaskState::kRunning;
  t.provider_task_id = "prov-1";
  t.provider_status = "THROTTLED";
  t.progress = 0.25f;
  t.target_filename_stub = "photo_video";
  t.output_path = "/out/photo_video.mp4";
  t.output_size_bytes = 123456789012;
  t.output_sha256 = std::string(64, 'e');
  t.error = TaskError{"PROVIDER_ERROR", "went wrong", true, "E42"};
  t.attempt_count = 3;
  std::string image(100, 'p');
  t.image_sha256 = Sha256Hex(image);
  t.image_size_bytes = static_cast<int64_t>(image.size());
  t.create_time = t0;
  t.update_time = t0 + absl::Microseconds(1);
  t.start_time = t0 + absl::Seconds(2);
  t.end_time = absl::InfinitePast();
  t.next_attempt_time = absl::InfiniteFuture();
  t.lease_owner = "engine-1";
  t.lease_expiry = t0 + absl::Minutes(1);
  t.provider_cancel_pending = true;
  t.output_urls = {"https://cdn.example/1.mp4", "https://cdn.example/2.mp4"};
  t.spec_fingerprint = SpecFingerprint(t.spec, t.image_sha256);

  Task stored = InsertOk(t, image);
  Task expected = t;
  expected.version = 1;
  ExpectSameTask(stored, expected);
  VT_ASSERT_OK_AND_ASSIGN(Task got, store_->Get(t.id));
  ExpectSameTask(got, expected);

  // Unset fields come back unset.
  Task bare = MakeTask("bare");
  bare.create_time = absl::InfinitePast();
  bare.update_time = absl::InfinitePast();
  Task stored_bare = InsertOk(bare);
  VT_ASSERT_OK_AND_ASSIGN(Task got_bare, store_->Get("bare"));
  EXPECT_FALSE(got_bare.spec.seed.has_value());
  EXPECT_TRUE(got_bare.spec.labels.empty());
  EXPECT_TRUE(got_bare.spec.model_options.empty());
  EXPECT_TRUE(got_bare.output_urls.empty());
  EXPECT_EQ(got_bare.start_time, absl::InfinitePast());
  EXPECT_EQ(got_bare.lease_expiry, absl::InfinitePast());
  // Insert stamps missing creation times from the clock.
  EXPECT_EQ(got_bare.create_time, clock_.Now());
  EXPECT_EQ(got_bare.update_time, clock_.Now());
  ExpectSameTask(got_bare, stored_bare);

  EXPECT_THAT(store_->Get("missing"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing")));
}

TEST_P(TaskStoreConformanceTest, RejectsTasksWithoutIdOrStub) {
  Task no_id = MakeTask("");
  EXPECT_THAT(InsertOne(no_id), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id")));
  Task no_stub = MakeTask("x");
  no_stub.target_filename_stub.clear();
  EXPECT_THAT(InsertOne(no_stub),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("target_filename_stub")));
  Task dup = MakeTask("same-id", "s1");
  InsertOk(dup);
  Task dup2 = MakeTask("same-id", "s2");
  EXPECT_THAT(InsertOne(dup2), StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("same-id")));
}

TEST_P(TaskStoreConformanceTest, RequestIdIsIdempotent) {
  Task first = MakeTask("t1");
  first.request_id = "r-1";
  Task stored = InsertOk(first);

  Task again = MakeTask("t2");  // another id, same spec
  again.spec = first.spec;
  again.request_id = "r-1";
  again.spec_fingerprint = first.spec_fingerprint;
  VT_ASSERT_OK_AND_ASSIGN(InsertResult same, InsertOne(again));
  EXPECT_FALSE(same.created);
  EXPECT_EQ(same.task.id, "t1");
  EXPECT_EQ(same.task.version, stored.version);

  Task other = MakeTask("t3");
  other.request_id = "r-1";
  other.spec.prompt_text = "something else";
  other.spec_fingerprint = SpecFingerprint(other.spec, "");
  EXPECT_THAT(InsertOne(other), StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("\"r-1\"")));
  EXPECT_THAT(store_->Get("t2"), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  EXPECT_THAT(store_->Get("t3"), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST_P(TaskStoreConformanceTest, RacingRequestIdsInOneBatch) {
  Task a = MakeTask("a");
  a.request_id = "dup";
  Task b = MakeTask("b");
  b.spec = a.spec;
  b.request_id = "dup";
  b.spec_fingerprint = a.spec_fingerprint;
  Task c = MakeTask("c");
  c.request_id = "dup";  // other spec
  Task d = MakeTask("d");  // unrelated, must still succeed
  std::vector<NewTask> batch;
  batch.push_back(New(a));
  batch.push_back(New(b));
  batch.push_back(New(c));
  batch.push_back(New(d));
  InsertResults results = store_->Insert(std::move(batch));
  ASSERT_EQ(results.size(), 4u);
  ASSERT_THAT(results[0], IsOk());
  EXPECT_TRUE(results[0]->created);
  ASSERT_THAT(results[1], IsOk());
  EXPECT_FALSE(results[1]->created);
  EXPECT_EQ(results[1]->task.id, "a");
  EXPECT_THAT(results[2], StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("dup")));
  ASSERT_THAT(results[3], IsOk());
  EXPECT_TRUE(results[3]->created);
  EXPECT_THAT(store_->Get("d"), IsOk());
}

TEST_P(TaskStoreConformanceTest, RacingRequestIdsFromThreads) {
  Task proto = MakeTask("proto");
  proto.request_id = "shared";
  constexpr int kThreads = 8;
  std::vector<absl::StatusOr<InsertResult>> results(kThreads, absl::InternalError("unset"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      Task t = proto;
      t.id = absl::StrCat("racer", i);
      std::vector<NewTask> batch;
      batch.push_back(New(std::move(t)));
      InsertResults r = store_->Insert(std::move(batch));
      results[i] = r.at(0);
    });
  }
  for (auto& t : threads) t.join();
  int created = 0;
  std::set<std::string> ids;
  for (const auto& r : results) {
    ASSERT_THAT(r, IsOk());
    created += r->created ? 1 : 0;
    ids.insert(r->task.id);
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(ids.size(), 1u);
}

TEST_P(TaskStoreConformanceTest, StubCollisionsGetSuffixes) {
  EXPECT_EQ(InsertOk(MakeTask("1", "x_video")).target_filename_stub, "x_video");
  EXPECT_EQ(InsertOk(MakeTask("2", "x_video")).target_filename_stub, "x_video_2");
  EXPECT_EQ(InsertOk(MakeTask("3", "x_video")).target_filename_stub, "x_video_3");
  // An explicit request for a name the counter would give next.
  EXPECT_EQ(InsertOk(MakeTask("4", "x_video_4")).target_filename_stub, "x_video_4");
  EXPECT_EQ(InsertOk(MakeTask("5", "x_video")).target_filename_stub, "x_video_5");
  // An explicit request for a taken suffixed name.
  EXPECT_EQ(InsertOk(MakeTask("6", "x_video_2")).target_filename_stub, "x_video_2_2");

  // Collisions inside one batch.
  std::vector<NewTask> batch;
  for (int i = 0; i < 3; ++i) batch.push_back(New(MakeTask(absl::StrCat("b", i), "y_video")));
  InsertResults results = store_->Insert(std::move(batch));
  ASSERT_EQ(results.size(), 3u);
  std::vector<std::string> stubs;
  for (const auto& r : results) {
    ASSERT_THAT(r, IsOk());
    stubs.push_back(r->task.target_filename_stub);
  }
  EXPECT_THAT(stubs, ElementsAre("y_video", "y_video_2", "y_video_3"));
  // The requested stub in the spec is left as the caller gave it.
  VT_ASSERT_OK_AND_ASSIGN(Task got, store_->Get("b2"));
  EXPECT_EQ(got.target_filename_stub, "y_video_3");
}

TEST_P(TaskStoreConformanceTest, UpdateIsCompareAndSwap) {
  Task t = InsertOk(MakeTask("t"));
  EXPECT_EQ(t.version, 1);
  Task change = t;
  change.state = TaskState::kRunning;
  change.provider_task_id = "p-1";
  change.progress = 0.5f;
  change.output_urls = {"https://x/1"};
  change.error = TaskError{"X", "y", true, "z"};
  change.update_time = t.update_time + absl::Seconds(1);
  change.spec.prompt_text = "ignored: the spec is immutable";
  change.target_filename_stub = "ignored";
  VT_ASSERT_OK_AND_ASSIGN(Task updated, store_->Update(change));
  EXPECT_EQ(updated.version, 2);
  EXPECT_EQ(updated.state, TaskState::kRunning);
  EXPECT_EQ(updated.spec.prompt_text, t.spec.prompt_text);
  EXPECT_EQ(updated.target_filename_stub, t.target_filename_stub);
  VT_ASSERT_OK_AND_ASSIGN(Task got, store_->Get("t"));
  ExpectSameTask(got, updated);
  EXPECT_EQ(got.output_urls, std::vector<std::string>{"https://x/1"});
  EXPECT_EQ(got.error.provider_code, "z");

  // A stale copy loses.
  change.state = TaskState::kFailed;
  EXPECT_THAT(store_->Update(change),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("stored version 2, given 1")));
  VT_ASSERT_OK_AND_ASSIGN(got, store_->Get("t"));
  EXPECT_EQ(got.state, TaskState::kRunning);

  Task unknown = MakeTask("nope");
  unknown.version = 1;
  EXPECT_THAT(store_->Update(unknown), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
}

TEST_P(TaskStoreConformanceTest, UpdateDoesNotShortenARenewedLease) {
  Task t = MakeTask("t");
  t.lease_owner = "me";
  t.lease_expiry = clock_.Now() + absl::Seconds(30);
  Task stored = InsertOk(t);
  VT_ASSERT_OK(store_->RenewLeases("me", clock_.Now() + absl::Seconds(90)));
  VT_ASSERT_OK_AND_ASSIGN(Task renewed, store_->Get("t"));
  EXPECT_EQ(renewed.lease_expiry, clock_.Now() + absl::Seconds(90));
  EXPECT_EQ(renewed.version, stored.version);  // renewals keep the engine's copy current

  stored.state = TaskState::kRunning;  // the engine's copy still has +30 s
  VT_ASSERT_OK_AND_ASSIGN(Task updated, store_->Update(stored));
  EXPECT_EQ(updated.lease_expiry, clock_.Now() + absl::Seconds(90));
  // Releasing the lease does take effect.
  updated.lease_owner = "";
  updated.lease_expiry = absl::InfinitePast();
  VT_ASSERT_OK_AND_ASSIGN(Task released, store_->Update(updated));
  EXPECT_EQ(released.lease_owner, "");
  EXPECT_EQ(released.lease_expiry, absl::InfinitePast());
}

// Everything about List, against an in-memory model of 250 tasks.

TEST_P(TaskStoreConformanceTest, ListPagesWithFilters) {
  std::vector<Task> all;
  const TaskState kStates[] = {TaskState::kQueued, TaskState::kRunning, TaskState::kSucceeded,
                               TaskState::kFailed, TaskState::kCancelled};
  std::vector<NewTask> batch;
  for (int i = 0; i < 250; ++i) {
    Task t = MakeTask(absl::StrCat("task", 1000 + (i * 7919) % 1000));  // ids not in time order
    // Groups of three share a creation time: the id breaks the tie.
    t.create_time = absl::FromUnixSeconds(1'800'000'000) + absl::Milliseconds(i / 3);
    t.state = kStates[i % 5];
    t.spec.backend = i % 4 == 0 ? "runway" : "mock";
    if (i % 3 == 0) t.spec.labels["team"] = "a";
    if (i % 3 == 1) t.spec.labels["team"] = "b";
    if (i % 2 == 0) t.spec.labels["env"] = "prod";
    t.caller = i % 7 == 0 ? "rare" : "common";
    t.spec_fingerprint = SpecFingerprint(t.spec, "");
    all.push_back(t);
    batch.push_back(New(t));
  }
  for (const auto& r : store_->Insert(std::move(batch))) ASSERT_THAT(r, IsOk());

  std::sort(all.begin(), all.end(), [](const Task& a, const Task& b) {
    if (a.create_time != b.create_time) return a.create_time > b.create_time;
    return a.id > b.id;
  });

  struct Case {
    std::vector<TaskState> states;
    std::string backend;
    std::map<std::string, std::string> labels;
    int page_size;
    std::string caller;
  };
  const std::vector<Case> cases = {
      {{}, "", {}, 50, ""},
      {{}, "", {}, 7, ""},
      {{TaskState::kQueued}, "", {}, 9, ""},
      {{TaskState::kSucceeded, TaskState::kFailed, TaskState::kCancelled}, "", {}, 11, ""},
      {{}, "runway", {}, 5, ""},
      {{}, "", {{"team", "a"}}, 13, ""},
      {{}, "", {{"team", "a"}, {"env", "prod"}}, 4, ""},
      {{TaskState::kRunning, TaskState::kQueued}, "mock", {{"env", "prod"}}, 3, ""},
      {{}, "nobody", {}, 10, ""},
      {{}, "", {{"team", "c"}}, 10, ""},
      {{}, "", {}, 1000, ""},
      {{}, "", {}, 6, "rare"},
      {{TaskState::kFailed}, "", {{"team", "b"}}, 2, ""},
      {{}, "runway", {{"team", "a"}}, 3, "common"},
      {{TaskState::kQueued, TaskState::kCancelled}, "", {{"env", "prod"}}, 4, "rare"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat("states=", c.states.size(), " backend=", c.backend,
                              " labels=", c.labels.size(), " page=", c.page_size,
                              " caller=", c.caller));
    std::vector<std::string> want;
    for (const Task& t : all) {
      if (!c.states.empty() &&
          std::find(c.states.begin(), c.states.end(), t.state) == c.states.end()) {
        continue;
      }
      if (!c.backend.empty() && t.spec.backend != c.backend) continue;
      if (!c.caller.empty() && t.caller != c.caller) continue;
      bool labels_match = true;
      for (const auto& [k, v] : c.labels) {
        auto it = t.spec.labels.find(k);
        if (it == t.spec.labels.end() || it->second != v) labels_match = false;
      }
      if (labels_match) want.push_back(t.id);
    }
    std::vector<std::string> got;
    ListQuery q;
    q.states = c.states;
    q.backend = c.backend;
    q.labels = c.labels;
    q.caller = c.caller;
    q.page_size = c.page_size;
    int pages = 0;
    while (true) {
      VT_ASSERT_OK_AND_ASSIGN(ListPage page, store_->List(q));
      ++pages;
      ASSERT_LE(static_cast<int>(page.tasks.size()), c.page_size);
      for (const Task& t : page.tasks) got.push_back(t.id);
      if (!page.has_more) break;
      ASSERT_EQ(static_cast<int>(page.tasks.size()), c.page_size);
      q.after = ListCursor{page.tasks.back().create_time, page.tasks.back().id};
      ASSERT_LT(pages, 300);
    }
    EXPECT_EQ(got, want);
    const int n = static_cast<int>(want.size());
    EXPECT_EQ(pages, std::max(1, (n + c.page_size - 1) / c.page_size));
  }
}

TEST_P(TaskStoreConformanceTest, ClaimTakesPriorityThenFifo) {
  const absl::Time now = clock_.Now();
  auto add = [&](const std::string& id, int priority, absl::Duration age) {
    Task t = MakeTask(id);
    t.spec.priority = priority;
    t.create_time = now - age;
    t.spec_fingerprint = SpecFingerprint(t.spec, "");
    return t;
  };
  std::vector<NewTask> batch;
  batch.push_back(New(add("low-old", 0, absl::Minutes(10))));
  batch.push_back(New(add("high-new", 5, absl::Minutes(1))));
  batch.push_back(New(add("high-old", 5, absl::Minutes(2))));
  batch.push_back(New(add("low-new", 0, absl::Minutes(3))));
  Task later = add("later", 9, absl::Minutes(20));
  later.next_attempt_time = now + absl::Seconds(1);  // not yet
  batch.push_back(New(later));
  Task retry_due = add("retry-due", 0, absl::Minutes(30));
  retry_due.next_attempt_time = now;  // due now
  retry_due.start_time = now - absl::Hours(1);
  retry_due.attempt_count = 2;
  batch.push_back(New(retry_due));
  Task leased = add("leased", 9, absl::Minutes(20));
  leased.lease_owner = "other";
  leased.lease_expiry = now + absl::Seconds(10);
  batch.push_back(New(leased));
  Task expired = add("expired", 1, absl::Minutes(20));
  expired.lease_owner = "other";
  expired.lease_expiry = now - absl::Seconds(1);
  batch.push_back(New(expired));
  Task other_backend = add("other-backend", 9, absl::Minutes(20));
  other_backend.spec.backend = "runway";
  batch.push_back(New(other_backend));
  Task running = add("running", 9, absl::Minutes(20));
  running.state = TaskState::kRunning;
  batch.push_back(New(running));
  for (const auto& r : store_->Insert(std::move(batch))) ASSERT_THAT(r, IsOk());

  // Two claims, to check the limit.
  const absl::Time expiry = now + absl::Minutes(1);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> first, store_->ClaimQueued("mock", 3, now, "me", expiry));
  std::vector<std::string> ids;
  for (const Task& t : first) ids.push_back(t.id);
  EXPECT_THAT(ids, ElementsAre("high-old", "high-new", "expired"));
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> second,
                          store_->ClaimQueued("mock", 10, now, "me", expiry));
  ids.clear();
  for (const Task& t : second) ids.push_back(t.id);
  EXPECT_THAT(ids, ElementsAre("retry-due", "low-old", "low-new"));

  for (const Task& t : first) {
    EXPECT_EQ(t.state, TaskState::kSubmitting);
    EXPECT_EQ(t.lease_owner, "me");
    EXPECT_EQ(t.lease_expiry, expiry);
    EXPECT_EQ(t.attempt_count, 1);
    EXPECT_EQ(t.start_time, now);
    EXPECT_EQ(t.update_time, now);
    EXPECT_EQ(t.version, 2);
    VT_ASSERT_OK_AND_ASSIGN(Task got, store_->Get(t.id));
    ExpectSameTask(got, t);
  }
  EXPECT_EQ(second[0].attempt_count, 3);
  EXPECT_EQ(second[0].start_time, now - absl::Hours(1));  // kept when set

  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> none, store_->ClaimQueued("mock", 10, now, "me", expiry));
  EXPECT_TRUE(none.empty());
  // Once time passes, the deferred one and the foreign lease become claimable.
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> after,
                          store_->ClaimQueued("mock", 10, now + absl::Seconds(10), "me", expiry));
  ids.clear();
  for (const Task& t : after) ids.push_back(t.id);
  EXPECT_THAT(ids, ElementsAre("later", "leased"));
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> runway,
                          store_->ClaimQueued("runway", 0, now, "me", expiry));
  EXPECT_TRUE(runway.empty());  // limit 0
}

TEST_P(TaskStoreConformanceTest, QueueQueriesAndRecovery) {
  const absl::Time now = clock_.Now();
  VT_ASSERT_OK_AND_ASSIGN(absl::Time empty_next, store_->NextQueuedTime("mock"));
  EXPECT_EQ(empty_next, absl::InfiniteFuture());
  VT_ASSERT_OK_AND_ASSIGN(int64_t zero, store_->CountQueued());
  EXPECT_EQ(zero, 0);

  Task deferred = MakeTask("deferred");
  deferred.next_attempt_time = now + absl::Seconds(30);
  InsertOk(deferred);
  VT_ASSERT_OK_AND_ASSIGN(absl::Time next, store_->NextQueuedTime("mock"));
  EXPECT_EQ(next, now + absl::Seconds(30));
  Task soon = MakeTask("soon");
  soon.next_attempt_time = now + absl::Seconds(5);
  InsertOk(soon);
  VT_ASSERT_OK_AND_ASSIGN(next, store_->NextQueuedTime("mock"));
  EXPECT_EQ(next, now + absl::Seconds(5));
  InsertOk(MakeTask("ready"));  // no next_attempt_time: ready at once
  VT_ASSERT_OK_AND_ASSIGN(next, store_->NextQueuedTime("mock"));
  EXPECT_EQ(next, absl::InfinitePast());
  VT_ASSERT_OK_AND_ASSIGN(next, store_->NextQueuedTime("runway"));
  EXPECT_EQ(next, absl::InfiniteFuture());

  Task running_mine = MakeTask("running-mine");
  running_mine.state = TaskState::kRunning;
  running_mine.lease_owner = "me";
  running_mine.lease_expiry = now + absl::Minutes(1);
  InsertOk(running_mine);
  Task running_theirs = MakeTask("running-theirs");
  running_theirs.state = TaskState::kDownloading;
  running_theirs.lease_owner = "them";
  running_theirs.lease_expiry = now + absl::Minutes(1);
  InsertOk(running_theirs);
  Task running_free = MakeTask("running-free");
  running_free.state = TaskState::kSubmitting;
  InsertOk(running_free);
  Task cancel_pending = MakeTask("cancel-pending");
  cancel_pending.state = TaskState::kCancelled;
  cancel_pending.provider_cancel_pending = true;
  InsertOk(cancel_pending);
  Task cancelled = MakeTask("cancelled");
  cancelled.state = TaskState::kCancelled;
  InsertOk(cancelled);
  Task done = MakeTask("done");
  done.state = TaskState::kSucceeded;
  InsertOk(done);

  VT_ASSERT_OK_AND_ASSIGN(int64_t queued, store_->CountQueued());
  EXPECT_EQ(queued, 3);

  auto ids_of = [](const std::vector<Task>& tasks) {
    std::set<std::string> ids;
    for (const Task& t : tasks) ids.insert(t.id);
    return ids;
  };
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> recover, store_->ListRecoverable("me", now));
  EXPECT_EQ(ids_of(recover), (std::set<std::string>{"running-mine", "running-free", "cancel-pending"}));
  VT_ASSERT_OK_AND_ASSIGN(recover, store_->ListRecoverable("me", now + absl::Minutes(2)));
  EXPECT_EQ(ids_of(recover), (std::set<std::string>{"running-mine", "running-theirs",
                                                    "running-free", "cancel-pending"}));

  // RenewLeases touches only the owner's live tasks.
  VT_ASSERT_OK(store_->RenewLeases("me", now + absl::Minutes(5)));
  VT_ASSERT_OK_AND_ASSIGN(Task mine, store_->Get("running-mine"));
  EXPECT_EQ(mine.lease_expiry, now + absl::Minutes(5));
  VT_ASSERT_OK_AND_ASSIGN(Task theirs, store_->Get("running-theirs"));
  EXPECT_EQ(theirs.lease_expiry, now + absl::Minutes(1));
}

TEST_P(TaskStoreConformanceTest, BlobsLiveWhileALiveTaskNeedsThem) {
  for (int64_t size : {int64_t{10}, kConformanceInlineMax * 4}) {
    SCOPED_TRACE(size);
    std::string image(static_cast<size_t>(size), static_cast<char>('a' + size % 26));
    std::string sha = Sha256Hex(image);
    Task first = MakeTask(absl::StrCat("first", size));
    first.image_sha256 = sha;
    Task second = MakeTask(absl::StrCat("second", size));
    second.image_sha256 = sha;
    first = InsertOk(first, image);
    second = InsertOk(second, image);

    first.state = TaskState::kSucceeded;
    VT_ASSERT_OK(store_->Update(first).status());
    VT_ASSERT_OK_AND_ASSIGN(std::string kept, store_->ReadImage(sha));  // second still needs it
    EXPECT_EQ(kept, image);

    second.state = TaskState::kRunning;  // not terminal: kept
    VT_ASSERT_OK_AND_ASSIGN(second, store_->Update(second));
    EXPECT_THAT(store_->ReadImage(sha), IsOk());

    second.state = TaskState::kCancelled;  // may be retried: kept
    VT_ASSERT_OK_AND_ASSIGN(second, store_->Update(second));
    EXPECT_THAT(store_->ReadImage(sha), IsOk());

    second.state = TaskState::kSucceeded;
    VT_ASSERT_OK(store_->Update(second).status());
    EXPECT_THAT(store_->ReadImage(sha), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
    EXPECT_FALSE(harness_->HasBlobOutsideDatabase(sha));

    // A new task with the same image stores it again.
    Task third = MakeTask(absl::StrCat("third", size));
    third.image_sha256 = sha;
    InsertOk(third, image);
    VT_ASSERT_OK_AND_ASSIGN(std::string again, store_->ReadImage(sha));
    EXPECT_EQ(again, image);
  }
}

TEST_P(TaskStoreConformanceTest, RejectedInsertDoesNotLeaveItsBlob) {
  std::string image(kConformanceInlineMax * 2, 'r');
  Task first = MakeTask("first");
  first.request_id = "req";
  InsertOk(first);
  Task clash = MakeTask("clash");
  clash.request_id = "req";
  clash.image_sha256 = Sha256Hex(image);
  clash.spec_fingerprint = SpecFingerprint(clash.spec, clash.image_sha256);
  EXPECT_THAT(InsertOne(clash, image), StatusIs(absl::StatusCode::kAlreadyExists, ::testing::_));
  EXPECT_FALSE(harness_->HasBlobOutsideDatabase(clash.image_sha256));
  EXPECT_THAT(store_->ReadImage(clash.image_sha256),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST_P(TaskStoreConformanceTest, DestructorDrainsQueuedInserts) {
  std::atomic<int> ok{0};
  for (int i = 0; i < 50; ++i) {
    std::vector<NewTask> batch;
    batch.push_back(New(MakeTask(absl::StrCat("d", i))));
    store_->InsertAsync(std::move(batch), [&](InsertResults r) {
      if (r.at(0).ok()) ok.fetch_add(1);
    });
  }
  store_.reset();
  EXPECT_EQ(ok.load(), 50);
  OpenStore();
  ListQuery q;
  q.page_size = 100;
  VT_ASSERT_OK_AND_ASSIGN(ListPage page, store_->List(q));
  EXPECT_EQ(page.tasks.size(), 50u);
}

TEST_P(TaskStoreConformanceTest, ImagesRoundTripSmallAndLarge) {
  std::string small(kConformanceInlineMax, 's');
  std::string large(kConformanceInlineMax * 64 + 1, 'L');
  Task a = MakeTask("a");
  a.image_sha256 = Sha256Hex(small);
  a.image_size_bytes = static_cast<int64_t>(small.size());
  InsertOk(a, small);
  Task b = MakeTask("b");
  b.image_sha256 = Sha256Hex(large);
  b.image_size_bytes = static_cast<int64_t>(large.size());
  InsertOk(b, large);

  VT_ASSERT_OK_AND_ASSIGN(std::string got_small, store_->ReadImage(a.image_sha256));
  EXPECT_EQ(got_small, small);
  VT_ASSERT_OK_AND_ASSIGN(std::string got_large, store_->ReadImage(b.image_sha256));
  EXPECT_EQ(got_large, large);
  // Binary bytes (NUL, high bit) come back unchanged.
  std::string binary;
  for (int i = 0; i < 512; ++i) binary.push_back(static_cast<char>(i % 256));
  Task c = MakeTask("c");
  c.image_sha256 = Sha256Hex(binary);
  InsertOk(c, binary);
  VT_ASSERT_OK_AND_ASSIGN(std::string got_binary, store_->ReadImage(c.image_sha256));
  EXPECT_EQ(got_binary, binary);

  EXPECT_THAT(store_->ReadImage(std::string(64, '0')),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("not stored")));
  EXPECT_THAT(store_->ReadImage("../etc/passwd"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hex")));
  Task bad = MakeTask("bad");
  bad.image_sha256 = "../etc/passwd";
  EXPECT_THAT(InsertOne(bad, "x"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hex")));
}

TEST_P(TaskStoreConformanceTest, ReopenKeepsTasks) {
  std::string image(kConformanceInlineMax * 3, 'i');
  Task a = MakeTask("a");
  a.image_sha256 = Sha256Hex(image);
  a.spec.labels = {{"k", "v"}};
  a = InsertOk(a, image);
  InsertOk(MakeTask("b"));
  const absl::Time expiry = clock_.Now() + absl::Hours(1);
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> claimed,
                          store_->ClaimQueued("mock", 10, clock_.Now(), "engine-1", expiry));
  ASSERT_EQ(claimed.size(), 2u);

  OpenStore();
  VT_ASSERT_OK_AND_ASSIGN(Task got, store_->Get("a"));
  EXPECT_EQ(got.state, TaskState::kSubmitting);
  EXPECT_EQ(got.spec.labels, a.spec.labels);
  EXPECT_EQ(got.version, claimed[0].id == "a" ? claimed[0].version : claimed[1].version);
  if (harness_->ReleasesLeasesOnOpen()) {
    // Nobody else can be working on these tasks.
    EXPECT_EQ(got.lease_owner, "");
    EXPECT_EQ(got.lease_expiry, absl::InfinitePast());
    VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> recover,
                            store_->ListRecoverable("engine-2", clock_.Now()));
    EXPECT_EQ(recover.size(), 2u);
  } else {
    // Another replica may still be working on them: leases stay.
    EXPECT_EQ(got.lease_owner, "engine-1");
    EXPECT_EQ(got.lease_expiry, expiry);
    VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> recover,
                            store_->ListRecoverable("engine-2", clock_.Now()));
    EXPECT_TRUE(recover.empty());
    VT_ASSERT_OK_AND_ASSIGN(recover, store_->ListRecoverable("engine-1", clock_.Now()));
    EXPECT_EQ(recover.size(), 2u);
    VT_ASSERT_OK_AND_ASSIGN(recover, store_->ListRecoverable("engine-2", expiry));
    EXPECT_EQ(recover.size(), 2u);
  }
  VT_ASSERT_OK_AND_ASSIGN(std::string bytes, store_->ReadImage(a.image_sha256));
  EXPECT_EQ(bytes, image);
  ListQuery q;
  q.labels = {{"k", "v"}};
  VT_ASSERT_OK_AND_ASSIGN(ListPage page, store_->List(q));
  ASSERT_EQ(page.tasks.size(), 1u);
  EXPECT_EQ(page.tasks[0].id, "a");
  // Stubs stay unique across a reopen.
  EXPECT_EQ(InsertOk(MakeTask("c", "a_video")).target_filename_stub, "a_video_2");
}

TEST_P(TaskStoreConformanceTest, ConcurrentInsertsKeepRequestIdsAndStubsUnique) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  absl::Mutex mu;
  int completed = 0;
  int already_exists = 0;
  int created_same = 0;
  int other_errors = 0;
  std::set<std::string> same_ids;
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
        const bool same = i == 0;
        std::vector<NewTask> batch;
        batch.push_back(New(std::move(task)));
        store_->InsertAsync(std::move(batch), [&, same](InsertResults r) {
          absl::MutexLock lock(&mu);
          if (absl::IsAlreadyExists(r.at(0).status())) {
            ++already_exists;
          } else if (!r.at(0).ok()) {
            ++other_errors;
          } else if (same) {
            same_ids.insert(r.at(0)->task.id);
            created_same += r.at(0)->created ? 1 : 0;
          }
          if (++completed == kThreads * kPerThread) all_done.Notify();
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  all_done.WaitForNotification();
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(already_exists, kThreads - 1);
    EXPECT_EQ(other_errors, 0);
    EXPECT_EQ(created_same, 1);
    EXPECT_EQ(same_ids.size(), 1u);
  }
  ListQuery all;
  all.page_size = 1000;
  VT_ASSERT_OK_AND_ASSIGN(ListPage page, store_->List(all));
  std::set<std::string> stubs;
  for (const Task& t : page.tasks) stubs.insert(t.target_filename_stub);
  EXPECT_EQ(page.tasks.size(), kThreads * (kPerThread - 2) + 2u);
  EXPECT_EQ(stubs.size(), page.tasks.size()) << "stubs must be unique";
}

// The shared insert writes every label in one statement; each must be kept
// and filterable.
TEST_P(TaskStoreConformanceTest, ManyLabelsRoundTripAndFilter) {
  Task t = MakeTask("labelled");
  for (int i = 0; i < 40; ++i) t.spec.labels[absl::StrCat("k", i)] = absl::StrCat("v", i);
  t.spec_fingerprint = SpecFingerprint(t.spec, "");
  InsertOk(t);
  InsertOk(MakeTask("plain"));
  VT_ASSERT_OK_AND_ASSIGN(Task got, store_->Get("labelled"));
  EXPECT_EQ(got.spec.labels, t.spec.labels);
  ListQuery q;
  q.labels = {{"k7", "v7"}, {"k39", "v39"}};
  VT_ASSERT_OK_AND_ASSIGN(ListPage page, store_->List(q));
  ASSERT_EQ(page.tasks.size(), 1u);
  EXPECT_EQ(page.tasks[0].id, "labelled");
  q.labels = {{"k7", "v8"}};
  VT_ASSERT_OK_AND_ASSIGN(page, store_->List(q));
  EXPECT_TRUE(page.tasks.empty());
}

// Image digests are checked the same way by every store, before anything
// is stored or read.
TEST_P(TaskStoreConformanceTest, ImageDigestsAreChecked) {
  Task bad = MakeTask("bad");
  bad.image_sha256 = "../../etc/passwd";
  EXPECT_THAT(InsertOne(bad, "bytes"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("image_sha256")));
  EXPECT_THAT(store_->Get("bad").status(), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  EXPECT_THAT(store_->ReadImage("ABC").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_THAT(store_->ReadImage(std::string(64, 'e')).status(),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

// A queued task without a next attempt time is due first (NULL sorts first
// in every store).
TEST_P(TaskStoreConformanceTest, NextQueuedTimeOfATaskDueAtOnce) {
  Task later = MakeTask("later");
  later.next_attempt_time = clock_.Now() + absl::Minutes(5);
  InsertOk(later);
  VT_ASSERT_OK_AND_ASSIGN(absl::Time next, store_->NextQueuedTime("mock"));
  EXPECT_EQ(next, later.next_attempt_time);
  InsertOk(MakeTask("now"));  // next_attempt_time unset
  VT_ASSERT_OK_AND_ASSIGN(next, store_->NextQueuedTime("mock"));
  EXPECT_EQ(next, absl::InfinitePast());
}

}  // namespace videotask::store
