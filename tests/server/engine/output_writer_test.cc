// OutputWriter: atomic outputs, and the folder fsync shared by outputs
// committed at the same time.
#include "server/engine/output_writer.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "tests/testing/temp_dir.h"

namespace videotask::engine {
namespace {

TEST(DirSyncerTest, EachCallAloneGetsItsOwnFsync) {
  testing::TempDir dir;
  DirSyncer syncer(dir.path());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(syncer.Sync().ok());
  // A caller never rides on an fsync that began before it called.
  EXPECT_EQ(syncer.syncs(), 3);
}

TEST(DirSyncerTest, AMissingFolderIsAnErrorForItsCallers) {
  testing::TempDir dir;
  DirSyncer syncer(absl::StrCat(dir.path(), "/absent"));
  EXPECT_FALSE(syncer.Sync().ok());
}

TEST(OutputWriterTest, OutputsCommittedTogetherAreAllInPlace) {
  testing::TempDir dir;
  const std::string out = absl::StrCat(dir.path(), "/out");  // made by the first output
  OutputWriter writer(out, 1 << 20);
  constexpr int kOutputs = 16;
  std::vector<std::thread> threads;
  std::vector<std::string> paths(kOutputs);
  for (int i = 0; i < kOutputs; ++i) {
    threads.emplace_back([&, i] {
      auto file = writer.Begin(absl::StrCat("stub", i), absl::StrCat("task", i));
      ASSERT_TRUE(file.ok()) << file.status();
      ASSERT_TRUE((*file)->Write(absl::StrCat("video ", i)).ok());
      auto info = (*file)->Commit();
      ASSERT_TRUE(info.ok()) << info.status();
      paths[i] = info->path;
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kOutputs; ++i) {
    EXPECT_EQ(paths[i], absl::StrCat(out, "/stub", i, ".mp4"));
    auto bytes = ReadFile(paths[i], 1 << 20);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    EXPECT_EQ(*bytes, absl::StrCat("video ", i));
  }
  EXPECT_GE(writer.dir_syncer().syncs(), 1);
  EXPECT_LE(writer.dir_syncer().syncs(), kOutputs);
}

}  // namespace
}  // namespace videotask::engine
