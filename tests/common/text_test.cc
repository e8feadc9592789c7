#include "common/text.h"

#include <gtest/gtest.h>

namespace videotask {
namespace {

TEST(Utf16LengthTest, CountsCodeUnits) {
  EXPECT_EQ(Utf16Length(""), 0);
  EXPECT_EQ(Utf16Length("abc"), 3);
  EXPECT_EQ(Utf16Length("caf\xC3\xA9"), 4);           // é: one unit
  EXPECT_EQ(Utf16Length("\xE2\x82\xAC"), 1);          // €: one unit
  EXPECT_EQ(Utf16Length("\xF0\x9F\x8E\xA5"), 2);      // 🎥: a surrogate pair
}

TEST(Utf16LengthTest, RefusesInvalidUtf8) {
  EXPECT_FALSE(Utf16Length("\xC3").has_value());              // truncated
  EXPECT_FALSE(Utf16Length("\xC0\xAF").has_value());          // overlong '/'
  EXPECT_FALSE(Utf16Length("\xED\xA0\x80").has_value());      // surrogate
  EXPECT_FALSE(Utf16Length("\xF4\x90\x80\x80").has_value());  // > U+10FFFF
  EXPECT_FALSE(Utf16Length("\xFF").has_value());
  EXPECT_FALSE(Utf16Length("a\x80").has_value());             // stray continuation
}

TEST(QuotedForErrorTest, QuotesEscapesAndCuts) {
  EXPECT_EQ(QuotedForError("gen4_turbo"), "\"gen4_turbo\"");
  EXPECT_EQ(QuotedForError(""), "\"\"");
  EXPECT_EQ(QuotedForError("a\nb\"c\\"), "\"a\\nb\\\"c\\\\\"");
  EXPECT_EQ(QuotedForError("\xe2\x82\xac"), "\"\\xe2\\x82\\xac\"");
  std::string long_value(100, 'x');
  EXPECT_EQ(QuotedForError(long_value), "\"" + std::string(64, 'x') + "...\" (100 bytes)");
  EXPECT_EQ(QuotedForError(std::string(64, 'y')), "\"" + std::string(64, 'y') + "\"");
}

}  // namespace
}  // namespace videotask
