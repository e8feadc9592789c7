// The conformance suite, reuse of identical work: the reuse key kept at
// insert, the match of an identical task (SUCCEEDED with its output, or
// live), followers never claimed, and what is not identical.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "server/domain/task.h"
#include "tests/server/store/store_conformance.h"
#include "tests/testing/status_matchers.h"

namespace videotask::store {
namespace {

using ::testing::ElementsAre;
using ::videotask::testing::IsOk;

constexpr char kImage[] = "image bytes of the reuse tests";

std::vector<std::string> Ids(const std::vector<Task>& tasks) {
  std::vector<std::string> ids;
  for (const Task& t : tasks) ids.push_back(t.id);
  return ids;
}

}  // namespace

class ReuseConformance {
 public:
  // A task with inline image bytes (kImage), seed 7, one model option.
  static Task Keyed(Task t) {
    t.spec.image.source = ImageSource::kContent;
    t.spec.image.uri.clear();
    t.spec.image.mime_type = "image/png";
    t.spec.prompt_text = "a cat on a wall";
    t.spec.seed = 7;
    t.spec.model_options = {{"motion", "3"}};
    t.image_sha256 = Sha256Hex(kImage);
    t.image_size_bytes = static_cast<int64_t>(sizeof(kImage) - 1);
    t.spec_fingerprint = SpecFingerprint(t.spec, t.image_sha256);
    return t;
  }
  static absl::StatusOr<InsertResult> Insert(TaskStore& store, Task t, bool reuse = true) {
    // The bytes go along when they are the task's image.
    std::string bytes = t.image_sha256 == Sha256Hex(kImage) ? kImage : "";
    NewTask n = MakeNewTask(std::move(t), std::move(bytes));
    n.reuse = reuse;
    std::vector<NewTask> batch;
    batch.push_back(std::move(n));
    InsertResults results = store.Insert(std::move(batch));
    if (results.size() != 1) return absl::InternalError("wrong result count");
    return results[0];
  }
};

TEST_P(TaskStoreConformanceTest, ReuseFollowsAnIdenticalLiveTaskWhichAloneIsClaimed) {
  VT_ASSERT_OK_AND_ASSIGN(
      InsertResult a,
      ReuseConformance::Insert(*store_, ReuseConformance::Keyed(MakeTask("reuse_a"))));
  EXPECT_FALSE(a.task.reuse_key.empty());
  EXPECT_EQ(a.task.reused_from, "");
  EXPECT_EQ(a.reused, nullptr);

  // Labels, priority, stub and caller are not part of "identical".
  Task b_spec = ReuseConformance::Keyed(MakeTask("reuse_b"));
  b_spec.spec.labels = {{"batch", "2"}};
  b_spec.spec.priority = 5;
  b_spec.caller = "bob";
  VT_ASSERT_OK_AND_ASSIGN(InsertResult b, ReuseConformance::Insert(*store_, b_spec));
  EXPECT_EQ(b.task.reuse_key, a.task.reuse_key);
  EXPECT_EQ(b.task.reused_from, "reuse_a");
  EXPECT_EQ(b.reused, nullptr);  // a is live: b waits for it
  VT_ASSERT_OK_AND_ASSIGN(Task stored_b, store_->Get("reuse_b"));
  EXPECT_EQ(stored_b.state, TaskState::kQueued);
  EXPECT_EQ(stored_b.reused_from, "reuse_a");
  EXPECT_EQ(stored_b.next_attempt_time, absl::InfiniteFuture());
  EXPECT_EQ(stored_b.provider_status, "waiting for reuse_a (identical)");

  // Only a is sent, although b has the higher priority.
  const absl::Time now = clock_.Now();
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> claimed,
                          store_->ClaimQueued("mock", 10, now, "me", now + absl::Minutes(1)));
  EXPECT_THAT(Ids(claimed), ElementsAre("reuse_a"));

  // A third identical submit follows a (the original), never b.
  VT_ASSERT_OK_AND_ASSIGN(
      InsertResult c,
      ReuseConformance::Insert(*store_, ReuseConformance::Keyed(MakeTask("reuse_c"))));
  EXPECT_EQ(c.task.reused_from, "reuse_a");
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> of_a, store_->ListFollowers("reuse_a", 10));
  EXPECT_THAT(Ids(of_a), ElementsAre("reuse_b", "reuse_c"));
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> any, store_->ListFollowers("", 1));
  EXPECT_THAT(Ids(any), ElementsAre("reuse_b"));
  VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> none, store_->ListFollowers("reuse_b", 10));
  EXPECT_TRUE(none.empty());

  // A follower let go (reused_from cleared, claimable) is no follower any more.
  stored_b.reused_from.clear();
  stored_b.next_attempt_time = absl::InfinitePast();
  VT_ASSERT_OK_AND_ASSIGN(Task released, store_->Update(stored_b));
  EXPECT_EQ(released.reused_from, "");
  VT_ASSERT_OK_AND_ASSIGN(of_a, store_->ListFollowers("reuse_a", 10));
  EXPECT_THAT(Ids(of_a), ElementsAre("reuse_c"));
  VT_ASSERT_OK_AND_ASSIGN(claimed,
                          store_->ClaimQueued("mock", 10, now, "me", now + absl::Minutes(1)));
  EXPECT_THAT(Ids(claimed), ElementsAre("reuse_b"));
}

TEST_P(TaskStoreConformanceTest, ReuseTakesASucceededTaskWithItsOutputKept) {
  VT_ASSERT_OK_AND_ASSIGN(
      InsertResult a,
      ReuseConformance::Insert(*store_, ReuseConformance::Keyed(MakeTask("done_a"))));
  Task done = a.task;
  done.state = TaskState::kSucceeded;
  done.output_path = "/out/done_a_video.mp4";
  done.output_size_bytes = 10;
  done.output_sha256 = "abc";
  done.end_time = clock_.Now();
  VT_ASSERT_OK_AND_ASSIGN(done, store_->Update(done));

  VT_ASSERT_OK_AND_ASSIGN(
      InsertResult b,
      ReuseConformance::Insert(*store_, ReuseConformance::Keyed(MakeTask("done_b"))));
  EXPECT_EQ(b.task.reused_from, "done_a");
  ASSERT_NE(b.reused, nullptr);
  EXPECT_EQ(b.reused->id, "done_a");
  EXPECT_EQ(b.reused->output_path, "/out/done_a_video.mp4");

  // Once the output is deleted, nothing is reused: the next one is sent.
  done.output_removed_time = clock_.Now();
  VT_ASSERT_OK(store_->Update(done).status());
  Task b_done = b.task;
  b_done.state = TaskState::kCancelled;
  b_done.end_time = clock_.Now();
  VT_ASSERT_OK(store_->Update(b_done).status());
  VT_ASSERT_OK_AND_ASSIGN(
      InsertResult c,
      ReuseConformance::Insert(*store_, ReuseConformance::Keyed(MakeTask("done_c"))));
  EXPECT_EQ(c.task.reused_from, "");
  EXPECT_EQ(c.reused, nullptr);
  EXPECT_FALSE(c.task.reuse_key.empty());
}

TEST_P(TaskStoreConformanceTest, ReuseMatchesOnlyIdenticalKeyedTasks) {
  VT_ASSERT_OK(
      ReuseConformance::Insert(*store_, ReuseConformance::Keyed(MakeTask("orig"))).status());
  auto follows = [&](Task t, bool reuse = true) -> std::string {
    absl::StatusOr<InsertResult> r = ReuseConformance::Insert(*store_, std::move(t), reuse);
    EXPECT_THAT(r, IsOk());
    return r.ok() ? r->task.reused_from : "error";
  };
  Task other_seed = ReuseConformance::Keyed(MakeTask("other_seed"));
  other_seed.spec.seed = 8;
  EXPECT_EQ(follows(other_seed), "");
  Task no_seed = ReuseConformance::Keyed(MakeTask("no_seed"));
  no_seed.spec.seed.reset();
  EXPECT_EQ(follows(no_seed), "");
  Task other_options = ReuseConformance::Keyed(MakeTask("other_options"));
  other_options.spec.model_options = {{"motion", "4"}};
  EXPECT_EQ(follows(other_options), "");
  Task no_options = ReuseConformance::Keyed(MakeTask("no_options"));
  no_options.spec.model_options.clear();
  EXPECT_EQ(follows(no_options), "");
  Task other_prompt = ReuseConformance::Keyed(MakeTask("other_prompt"));
  other_prompt.spec.prompt_text = "a dog on a wall";
  EXPECT_EQ(follows(other_prompt), "");
  Task other_ratio = ReuseConformance::Keyed(MakeTask("other_ratio"));
  other_ratio.spec.ratio = "720:1280";
  EXPECT_EQ(follows(other_ratio), "");
  Task other_image = ReuseConformance::Keyed(MakeTask("other_image"));
  other_image.image_sha256 = Sha256Hex("other bytes");
  EXPECT_EQ(follows(other_image), "");
  // An unset seed matches an unset seed.
  Task no_seed_again = ReuseConformance::Keyed(MakeTask("no_seed_again"));
  no_seed_again.spec.seed.reset();
  EXPECT_EQ(follows(no_seed_again), "no_seed");

  // Without reuse: no key, no match, never matched later.
  Task plain = ReuseConformance::Keyed(MakeTask("plain"));
  plain.spec.prompt_text = "plain";
  EXPECT_EQ(follows(plain, /*reuse=*/false), "");
  VT_ASSERT_OK_AND_ASSIGN(Task stored_plain, store_->Get("plain"));
  EXPECT_EQ(stored_plain.reuse_key, "");
  Task after_plain = ReuseConformance::Keyed(MakeTask("after_plain"));
  after_plain.spec.prompt_text = "plain";
  EXPECT_EQ(follows(after_plain), "");

  // An https image has no digest at submit: never keyed.
  Task https = MakeTask("https");
  https.spec.prompt_text = "a cat on a wall";
  VT_ASSERT_OK_AND_ASSIGN(InsertResult r, ReuseConformance::Insert(*store_, https));
  EXPECT_EQ(r.task.reuse_key, "");
}

TEST_P(TaskStoreConformanceTest, ReuseKeepsRequestIdIdempotency) {
  Task a = ReuseConformance::Keyed(MakeTask("rid_a"));
  a.request_id = "req-1";
  VT_ASSERT_OK(ReuseConformance::Insert(*store_, a).status());
  Task again = ReuseConformance::Keyed(MakeTask("rid_b"));
  again.request_id = "req-1";
  VT_ASSERT_OK_AND_ASSIGN(InsertResult r, ReuseConformance::Insert(*store_, again));
  EXPECT_FALSE(r.created);
  EXPECT_EQ(r.task.id, "rid_a");
  EXPECT_EQ(r.task.reused_from, "");
}

}  // namespace videotask::store
