#include "server/domain/filename_stub.h"

#include <gtest/gtest.h>

#include <string>

namespace videotask {
namespace {

TEST(FilenameStubTest, OriginalWorkflowExamples) {
  EXPECT_EQ(DeriveFilenameStub("video_queue/elegant_business_classic_tt_draft.png"),
            "elegant_business_classic_tt_video");
  EXPECT_EQ(DeriveFilenameStub("shot_01.png"), "shot_video");
}

TEST(FilenameStubTest, StripsDraftAndNumberGroupsInAnyOrderRepeatedly) {
  EXPECT_EQ(DeriveFilenameStub("a_draft_02.jpeg"), "a_video");
  EXPECT_EQ(DeriveFilenameStub("x_02_draft.png"), "x_video");
  EXPECT_EQ(DeriveFilenameStub("x_1_2_draft_3_DRAFT.webp"), "x_video");
  EXPECT_EQ(DeriveFilenameStub("scene_2024_v2.png"), "scene_2024_v2_video");  // v2 is not a number group
}

TEST(FilenameStubTest, OnlyTheLastExtensionIsDropped) {
  EXPECT_EQ(DeriveFilenameStub("x.final.v2.png"), "x.final.v2_video");
  EXPECT_EQ(DeriveFilenameStub("noext"), "noext_video");
}

TEST(FilenameStubTest, DirectoriesOfEitherKindAreDropped) {
  EXPECT_EQ(DeriveFilenameStub("/abs/path/to/pic_03.png"), "pic_video");
  EXPECT_EQ(DeriveFilenameStub("C:\\images\\pic_draft.png"), "pic_video");
  EXPECT_EQ(DeriveFilenameStub("../../etc/passwd"), "passwd_video");
}

TEST(FilenameStubTest, NonAsciiIsReplacedAndFolded) {
  EXPECT_EQ(DeriveFilenameStub("caf\xC3\xA9_01.png"), "caf_video");
  EXPECT_EQ(DeriveFilenameStub("\xE5\x86\x99\xE7\x9C\x9F.png"), "video");  // only CJK
  EXPECT_EQ(DeriveFilenameStub("my photo (1).png"), "my_photo_1_video");
}

TEST(FilenameStubTest, NamesThatAreOnlySuffixes) {
  EXPECT_EQ(DeriveFilenameStub("_draft.png"), "video");
  EXPECT_EQ(DeriveFilenameStub("_01_draft.png"), "video");
  EXPECT_EQ(DeriveFilenameStub(""), "video");
  EXPECT_EQ(DeriveFilenameStub(".png"), "png_video");
}

TEST(FilenameStubTest, ResultIsAlwaysAValidStub) {
  for (const char* name : {"a", "..", "...png", "-x-.png", "a b c", "\x01\x02.png",
                           "_draft_draft_01", "x.png"}) {
    EXPECT_TRUE(IsValidStub(DeriveFilenameStub(name))) << name;
  }
  EXPECT_TRUE(IsValidStub(DeriveFilenameStub(std::string(1000, 'a'))));
  EXPECT_LE(DeriveFilenameStub(std::string(1000, 'a')).size(), kMaxStubLength);
}

TEST(FilenameStubTest, ValidStubCharset) {
  EXPECT_TRUE(IsValidStub("abc_video"));
  EXPECT_TRUE(IsValidStub("a.b-c_9"));
  EXPECT_FALSE(IsValidStub(""));
  EXPECT_FALSE(IsValidStub("../x"));
  EXPECT_FALSE(IsValidStub("a/b"));
  EXPECT_FALSE(IsValidStub(".hidden"));
  EXPECT_FALSE(IsValidStub("-rf"));
  EXPECT_FALSE(IsValidStub("caf\xC3\xA9"));
  EXPECT_FALSE(IsValidStub(std::string(kMaxStubLength + 1, 'a')));
}

}  // namespace
}  // namespace videotask
