#include "client/cli/inputs.h"

#include <string>

#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace videotask::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::videotask::testing::StatusIs;
using ::videotask::testing::TempDir;

TEST(IsImageNameTest, AcceptsTheThreeTypesInAnyCase) {
  EXPECT_TRUE(IsImageName("a.png"));
  EXPECT_TRUE(IsImageName("a.JPG"));
  EXPECT_TRUE(IsImageName("a.jpeg"));
  EXPECT_TRUE(IsImageName("a.WebP"));
  EXPECT_FALSE(IsImageName("a.txt"));
  EXPECT_FALSE(IsImageName(".png"));
  EXPECT_FALSE(IsImageName("png"));
}

TEST(ListImagesTest, NameOrderImagesOnly) {
  TempDir dir;
  for (const char* name : {"b_02.png", "a_01.jpg", "c.webp", "a_01.txt", ".hidden.png", "notes.md"}) {
    ASSERT_TRUE(WriteFileAtomically(dir.path() + "/" + name, "x").ok());
  }
  ASSERT_TRUE(MakeDirs(dir.path() + "/sub.png").ok());  // a folder, not an image
  VT_ASSERT_OK_AND_ASSIGN(auto names, ListImages(dir.path()));
  EXPECT_THAT(names, ElementsAre("a_01.jpg", "b_02.png", "c.webp"));
}

TEST(ListImagesTest, MissingFolderIsAnError) {
  EXPECT_FALSE(ListImages("/nonexistent-videotask-folder").ok());
}

TEST(SidecarNameTest, ReplacesTheExtension) {
  EXPECT_EQ(SidecarName("shot_01_draft.png"), "shot_01_draft.txt");
  EXPECT_EQ(SidecarName("a.b.jpeg"), "a.b.txt");
}

TEST(ParseManifestCsvTest, HeaderQuotesCommasAndNewlines) {
  VT_ASSERT_OK_AND_ASSIGN(
      auto rows, ParseManifestCsv("image,prompt\r\n"
                                  "a.png,slow zoom\r\n"
                                  "\n"
                                  "b.png,\"pan left, then \"\"right\"\"\"\n"
                                  "c.png,\"two\nlines\"\n"));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].image, "a.png");
  EXPECT_EQ(rows[0].prompt, "slow zoom");
  EXPECT_EQ(rows[1].prompt, "pan left, then \"right\"");
  EXPECT_EQ(rows[1].line, 4);
  EXPECT_EQ(rows[2].prompt, "two\nlines");
}

TEST(ParseManifestCsvTest, WithoutHeaderOrFinalNewline) {
  VT_ASSERT_OK_AND_ASSIGN(auto rows, ParseManifestCsv("a.png,zoom"));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].prompt, "zoom");
}

TEST(ParseManifestCsvTest, ErrorsNameTheLine) {
  EXPECT_THAT(ParseManifestCsv("a.png,x\nb.png\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 2")));
  EXPECT_THAT(ParseManifestCsv("a.png,\"open\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not closed")));
  EXPECT_THAT(ParseManifestCsv("a.png,x,y\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2 fields")));
}

TEST(ParseLabelsTest, PairsAndErrors) {
  VT_ASSERT_OK_AND_ASSIGN(auto labels, ParseLabels({"a=1", "b=x=y", "c="}));
  EXPECT_EQ(labels["a"], "1");
  EXPECT_EQ(labels["b"], "x=y");
  EXPECT_EQ(labels["c"], "");
  EXPECT_THAT(ParseLabels({"novalue"}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--label")));
  EXPECT_FALSE(ParseLabels({"=v"}).ok());
}

v1::TaskSpec Spec() {
  v1::TaskSpec spec;
  spec.set_prompt_text("slow zoom");
  spec.set_model("gen4_turbo");
  spec.set_ratio("16:9");
  spec.set_duration_seconds(4);
  spec.mutable_image()->set_filename("a.png");
  (*spec.mutable_labels())["batch"] = "1";
  return spec;
}

TEST(StableRequestIdTest, SameInputsSameIdAnyChangeAnother) {
  std::string id = StableRequestId("bytes", Spec());
  EXPECT_THAT(id, StartsWith("sd-"));
  EXPECT_EQ(id.size(), 3u + 32u);
  EXPECT_EQ(StableRequestId("bytes", Spec()), id);
  EXPECT_NE(StableRequestId("other bytes", Spec()), id);
  auto changed = [&](auto mutate) {
    v1::TaskSpec spec = Spec();
    mutate(spec);
    return StableRequestId("bytes", spec);
  };
  EXPECT_NE(changed([](v1::TaskSpec& s) { s.set_prompt_text("pan"); }), id);
  EXPECT_NE(changed([](v1::TaskSpec& s) { s.set_model("m"); }), id);
  EXPECT_NE(changed([](v1::TaskSpec& s) { s.set_ratio("1:1"); }), id);
  EXPECT_NE(changed([](v1::TaskSpec& s) { s.set_duration_seconds(5); }), id);
  EXPECT_NE(changed([](v1::TaskSpec& s) { s.set_seed(0); }), id);
  EXPECT_NE(changed([](v1::TaskSpec& s) { s.set_backend("mock"); }), id);
  EXPECT_NE(changed([](v1::TaskSpec& s) { (*s.mutable_labels())["batch"] = "2"; }), id);
  EXPECT_NE(changed([](v1::TaskSpec& s) { s.set_priority(1); }), id);
  EXPECT_NE(changed([](v1::TaskSpec& s) { s.mutable_image()->set_filename("b.png"); }), id);
  // Field boundaries are kept: moving text between fields changes the id.
  v1::TaskSpec a = Spec();
  a.set_model("ab");
  a.set_ratio("c");
  v1::TaskSpec b = Spec();
  b.set_model("a");
  b.set_ratio("bc");
  EXPECT_NE(StableRequestId("bytes", a), StableRequestId("bytes", b));
}

}  // namespace
}  // namespace videotask::cli
