// gMock matchers and assertions for absl::Status / StatusOr.
#ifndef VIDEOTASK_TESTS_TESTING_STATUS_MATCHERS_H_
#define VIDEOTASK_TESTS_TESTING_STATUS_MATCHERS_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace videotask::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status: " << s;
  return s.ok();
}

MATCHER_P2(StatusIs, code, message_matcher, "") {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status: " << s;
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()), result_listener);
}

}  // namespace videotask::testing

#define VT_ASSERT_OK(expr) ASSERT_THAT((expr), ::videotask::testing::IsOk())
#define VT_EXPECT_OK(expr) EXPECT_THAT((expr), ::videotask::testing::IsOk())

#define VT_ASSERT_OK_AND_ASSIGN(decl, expr)                                              \
  VT_TESTING_ASSIGN_IMPL_(VT_TESTING_CONCAT_(vt_statusor_, __LINE__), decl, expr)
#define VT_TESTING_CONCAT_INNER_(a, b) a##b
#define VT_TESTING_CONCAT_(a, b) VT_TESTING_CONCAT_INNER_(a, b)
#define VT_TESTING_ASSIGN_IMPL_(tmp, decl, expr)               \
  auto tmp = (expr);                                           \
  ASSERT_TRUE(tmp.ok()) << tmp.status();                       \
  decl = std::move(tmp).value()

#endif  // VIDEOTASK_TESTS_TESTING_STATUS_MATCHERS_H_
