#include "client/channel/channel.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace videotask::client {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::videotask::testing::StatusIs;

TEST(IsLoopbackTargetTest, KnowsLoopbackAddressesWithAndWithoutSchemes) {
  for (const char* target : {"127.0.0.1:50051", "127.8.9.10:1", "localhost:50051", "localhost",
                             "[::1]:50051", "dns:///localhost:50051", "ipv4:127.0.0.1:50051",
                             "ipv6:[::1]:50051"}) {
    EXPECT_TRUE(IsLoopbackTarget(target)) << target;
  }
  for (const char* target :
       {"videotask.internal:50051", "localhost.example.com:50051", "10.0.0.1:50051", "128.0.0.1:1",
        "dns:///videotask.internal:443", "127.example.com:50051", "127.0.0.1.nip.io:50051",
        "127.0.0.256:1", "[::1].example.com:1", "localhostx:1"}) {
    EXPECT_FALSE(IsLoopbackTarget(target)) << target;
  }
}

TEST(MakeChannelTest, RefusesATokenInClearTextBeyondLoopback) {
  ChannelOptions options;
  options.target = "videotask.internal:50051";
  options.token = "tok_secret_secret_secret";
  auto channel = MakeChannel(options, {});
  EXPECT_THAT(channel.status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                         AllOf(HasSubstr("--token"), HasSubstr("--tls"))));
  EXPECT_THAT(channel.status().message(), ::testing::Not(HasSubstr("tok_secret")));

  options.tls = true;
  EXPECT_TRUE(MakeChannel(options, {}).ok());
  options.tls = false;
  options.target = "127.0.0.1:50051";
  EXPECT_TRUE(MakeChannel(options, {}).ok());
}

TEST(MakeChannelTest, NamesTheFlagsOfTheCallerInErrors) {
  ChannelOptions options;
  options.flags = {"--target", "--tls", "--tls_ca", "--token"};
  EXPECT_THAT(MakeChannel(options, {}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--target: must name")));
  testing::TempDir tmp;
  options.target = "127.0.0.1:50051";
  options.tls_ca_file = tmp.path() + "/missing.pem";
  EXPECT_THAT(MakeChannel(options, {}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("--tls_ca: cannot read"), HasSubstr("missing.pem"))));
}

}  // namespace
}  // namespace videotask::client
