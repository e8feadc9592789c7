#include "client/cli/output.h"

#include "client/cli/connection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace videotask::cli {
namespace {

using ::testing::HasSubstr;

TEST(TableTest, AlignsColumns) {
  Table table({"ID", "STATE"});
  table.AddRow({"a", "QUEUED"});
  table.AddRow({"long-id", "RUNNING"});
  EXPECT_EQ(table.Render(),
            "ID       STATE\n"
            "a        QUEUED\n"
            "long-id  RUNNING\n");
}

TEST(StateTest, ParsesAnyCaseAndRefusesUnknown) {
  EXPECT_EQ(ParseState("running"), v1::RUNNING);
  EXPECT_EQ(ParseState("SUCCEEDED"), v1::SUCCEEDED);
  EXPECT_FALSE(ParseState("STATE_UNSPECIFIED").has_value());
  EXPECT_FALSE(ParseState("done").has_value());
  EXPECT_TRUE(IsTerminal(v1::CANCELLED));
  EXPECT_FALSE(IsTerminal(v1::DOWNLOADING));
  EXPECT_THAT(StateNames(), HasSubstr("QUEUED"));
}

TEST(FormatTest, AgeBytesProgress) {
  EXPECT_EQ(FormatAge(absl::Seconds(42)), "42s");
  EXPECT_EQ(FormatAge(absl::Minutes(5)), "5m");
  EXPECT_EQ(FormatAge(absl::Hours(3)), "3h");
  EXPECT_EQ(FormatAge(absl::Hours(72)), "3d");
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(ProgressBar(0.5f, 10), "[#####-----]");
  EXPECT_EQ(ProgressBar(2.0f, 4), "[####]");
  EXPECT_EQ(Percent(0.426f), "43%");
  EXPECT_EQ(Abbreviate("abcdefghij", 6), "abc...");
  EXPECT_EQ(Abbreviate("a\nb", 6), "a b");
}

TEST(JsonTest, TaskUsesProtoNamesAndEnumNames) {
  v1::Task task;
  task.set_id("t1");
  task.set_state(v1::RUNNING);
  task.set_target_filename_stub("shot_video");
  nlohmann::json json = ProtoToJson(task);
  EXPECT_EQ(json["id"], "t1");
  EXPECT_EQ(json["state"], "RUNNING");
  EXPECT_EQ(json["target_filename_stub"], "shot_video");
  EXPECT_TRUE(json.contains("progress"));
}

TEST(ExitCodeTest, ServerTroubleIsThreeCallerTroubleIsTwo) {
  EXPECT_EQ(ExitCodeFor(absl::OkStatus()), kExitOk);
  EXPECT_EQ(ExitCodeFor(absl::UnavailableError("x")), kExitUnavailable);
  EXPECT_EQ(ExitCodeFor(absl::DeadlineExceededError("x")), kExitUnavailable);
  EXPECT_EQ(ExitCodeFor(absl::InvalidArgumentError("x")), kExitUsage);
  EXPECT_EQ(ExitCodeFor(absl::NotFoundError("x")), kExitUsage);
  EXPECT_EQ(ExitCodeFor(absl::FailedPreconditionError("x")), kExitUsage);
  EXPECT_EQ(ExitCodeForErrorCode("INVALID_ARGUMENT"), kExitUsage);
  EXPECT_EQ(ExitCodeForErrorCode("RESOURCE_EXHAUSTED"), kExitUnavailable);
}

TEST(DescribeErrorTest, UnreachableNamesTheServer) {
  EXPECT_THAT(DescribeError(absl::UnavailableError("refused"), "127.0.0.1:9"),
              HasSubstr("127.0.0.1:9"));
  EXPECT_EQ(DescribeError(absl::InvalidArgumentError("spec.ratio: bad"), "s"),
            "INVALID_ARGUMENT: spec.ratio: bad");
}

TEST(ConnectionTest, TokenNeedsTlsOffLoopback) {
  FakeClock clock;
  GlobalOptions options;
  options.clock = &clock;
  options.token = "s3cret-token";
  options.server = "videotask.example:50051";
  auto refused = Connection::Create(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--tls"));
  EXPECT_THAT(std::string(refused.status().message()), ::testing::Not(HasSubstr("s3cret")));
  options.server = "127.0.0.1:50051";
  EXPECT_TRUE(Connection::Create(options).ok());
  options.server = "videotask.example:50051";
  options.tls = true;
  EXPECT_TRUE(Connection::Create(options).ok());
}

TEST(ConnectionTest, UnreadableCaFileIsAUsageError) {
  FakeClock clock;
  GlobalOptions options;
  options.clock = &clock;
  options.tls_ca_file = "/nonexistent/ca.pem";
  auto refused = Connection::Create(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(ExitCodeFor(refused.status()), kExitUsage);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--tls-ca"));
}

TEST(ConnectionTest, NeedsAClock) {
  GlobalOptions options;
  EXPECT_EQ(Connection::Create(options).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace videotask::cli
