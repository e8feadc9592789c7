#include "backends/http/url_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"

namespace videotask::backends {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::videotask::testing::IsOk;
using ::videotask::testing::StatusIs;

TEST(UrlPolicyTest, LoopbackUrls) {
  EXPECT_TRUE(IsLoopbackUrl("http://127.0.0.1:8080/v1"));
  EXPECT_TRUE(IsLoopbackUrl("https://localhost"));
  EXPECT_TRUE(IsLoopbackUrl("http://[::1]:9/"));
  EXPECT_FALSE(IsLoopbackUrl("http://localhost.example.com/"));
  EXPECT_FALSE(IsLoopbackUrl("https://127.0.0.1.example.com/"));
  EXPECT_FALSE(IsLoopbackUrl("https://api.dev.runwayml.com"));
  EXPECT_FALSE(IsLoopbackUrl("not a url"));
}

TEST(UrlPolicyTest, HttpsAnywhereHttpOnlyToLoopback) {
  EXPECT_THAT(CheckUrlAllowed("https://api.dev.runwayml.com"), IsOk());
  EXPECT_THAT(CheckUrlAllowed("https://cdn.example.com/a/b.mp4?sig=x"), IsOk());
  EXPECT_THAT(CheckUrlAllowed("http://127.0.0.1:8080/v1"), IsOk());
  EXPECT_THAT(CheckUrlAllowed("http://localhost:1/"), IsOk());
  EXPECT_THAT(CheckUrlAllowed("http://[::1]:9/x"), IsOk());
  EXPECT_THAT(CheckUrlAllowed("http://api.dev.runwayml.com"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("loopback")));
  EXPECT_THAT(CheckUrlAllowed("http://10.1.2.3/"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("https://")));
  EXPECT_THAT(CheckUrlAllowed("ftp://127.0.0.1/x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scheme")));
  EXPECT_THAT(CheckUrlAllowed("file:///etc/passwd"),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_THAT(CheckUrlAllowed("not a url"), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_THAT(CheckUrlAllowed(""), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
}

TEST(UrlPolicyTest, RefusalDoesNotEchoQueryOrCredentials) {
  absl::Status status = CheckUrlAllowed("http://user:hunter2@example.com/p?token=s3cret");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr("s3cret"))));
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("hunter2")));
}

TEST(UrlPolicyTest, RedactUrlKeepsOnlySchemeHostPortPath) {
  EXPECT_EQ(RedactUrl("https://user:pw@cdn.example.com:8443/out/v.mp4?X-Sig=abc#frag"),
            "https://cdn.example.com:8443/out/v.mp4");
  EXPECT_EQ(RedactUrl("http://127.0.0.1:80/v1/tasks/1"), "http://127.0.0.1:80/v1/tasks/1");
  EXPECT_EQ(RedactUrl("::"), "<invalid url>");
}

}  // namespace
}  // namespace videotask::backends
