#include "common/ids.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "absl/random/random.h"

namespace videotask {
namespace {

TEST(TaskIdTest, SortsByTimeAndIsWellFormed) {
  std::mt19937_64 rng(7);
  std::string a = NewTaskId(absl::FromUnixMillis(1'700'000'000'000), rng);
  std::string b = NewTaskId(absl::FromUnixMillis(1'700'000'000'001), rng);
  EXPECT_EQ(a.size(), 26u);
  EXPECT_LT(a, b);
  EXPECT_TRUE(IsWellFormedTaskId(a));
  EXPECT_FALSE(IsWellFormedTaskId("not-an-id"));
  EXPECT_FALSE(IsWellFormedTaskId("0000000000000000000000000U"));  // U is not Crockford
}

TEST(TaskIdTest, UniqueWithinOneMillisecond) {
  absl::BitGen rng;
  std::set<std::string> ids;
  for (int i = 0; i < 10000; ++i) ids.insert(NewTaskId(absl::FromUnixMillis(5), rng));
  EXPECT_EQ(ids.size(), 10000u);
}

}  // namespace
}  // namespace videotask
