// Callers named by the token file: the file's format and its errors (which
// never show a token), the checker's answer per token, and the real gRPC
// server recording the authenticated caller on each task, whatever the
// client sends.
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/text.h"
#include "server/auth/auth.h"
#include "tests/hardening/secure_server.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "videotask/v1/video_task_service.grpc.pb.h"

namespace videotask::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

constexpr char kAlice[] = "tok_alice_4c1d9e2f7a3b5c6d8e0f";
constexpr char kBob[] = "tok_bob_9a8b7c6d5e4f3a2b1c0d";
constexpr char kPlain[] = "tok_plain_1a2b3c4d5e6f7a8b9c0d";

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(TokenFileTest, LinesMayNameTheirCaller) {
  TempDir tmp;
  const std::string path = tmp.path() + "/tokens";
  WriteText(path, absl::StrCat("# teams\n", kAlice, " alice\n  ", kBob, "\t bob@example.com  \n",
                               kPlain, "\n", "tok_alice_second_token_0123 alice\n"));
  VT_ASSERT_OK_AND_ASSIGN(std::vector<auth::TokenEntry> entries, auth::LoadTokenFile(path));
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].token, kAlice);
  EXPECT_EQ(entries[0].caller, "alice");
  EXPECT_EQ(entries[1].token, kBob);
  EXPECT_EQ(entries[1].caller, "bob@example.com");
  EXPECT_EQ(entries[2].caller, auth::DerivedCallerName(kPlain));
  EXPECT_EQ(entries[3].caller, "alice");  // several tokens, one caller
  // The old format (one token per line) still loads.
  VT_ASSERT_OK_AND_ASSIGN(std::vector<std::string> tokens, auth::LoadTokens(path));
  EXPECT_EQ(tokens[2], kPlain);
}

TEST(TokenFileTest, DerivedNamesAreStableShortAndTellNothing) {
  const std::string name = auth::DerivedCallerName(kPlain);
  EXPECT_THAT(name, MatchesRegex("token-[0-9a-f]{8}"));
  EXPECT_EQ(name, auth::DerivedCallerName(kPlain));
  EXPECT_NE(name, auth::DerivedCallerName(kAlice));
  EXPECT_TRUE(IsCallerName(name));
}

TEST(TokenFileTest, BadLinesAreNamedWithoutTheirText) {
  TempDir tmp;
  const std::string path = tmp.path() + "/tokens";
  // A name out of the charset is not shown either (a line written the
  // wrong way round would show its token).
  WriteText(path, absl::StrCat(kAlice, " alice\n", kBob, " team+b/x\n"));
  EXPECT_THAT(auth::LoadTokenFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("line 2"), HasSubstr("A-Za-z0-9"), Not(HasSubstr("team")),
                             Not(HasSubstr(kBob)))));
  WriteText(path, absl::StrCat(kAlice, " alice extra\n"));
  EXPECT_THAT(auth::LoadTokenFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("line 1"), HasSubstr("<token> <caller-name>"),
                             Not(HasSubstr(kAlice)))));
  WriteText(path, absl::StrCat(kAlice, " ", std::string(65, 'a'), "\n"));
  EXPECT_THAT(auth::LoadTokenFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 1")));
  WriteText(path, absl::StrCat(kAlice, " -alice\n"));
  EXPECT_THAT(auth::LoadTokenFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 1")));
  // One token, two callers: ambiguous.
  WriteText(path, absl::StrCat(kAlice, " alice\n# x\n", kAlice, " bob\n"));
  EXPECT_THAT(auth::LoadTokenFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("line 3"), HasSubstr("line 1"), Not(HasSubstr(kAlice)))));
  WriteText(path, "short alice\n");
  EXPECT_THAT(auth::LoadTokenFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least 16")));
}

TEST(TokenCheckerTest, AuthenticateNamesTheCallerOfEachToken) {
  const auth::TokenChecker checker =
      auth::TokenChecker::WithCallers({{kAlice, "alice"}, {kBob, "bob"}});
  const std::string* alice = checker.Authenticate(absl::StrCat("Bearer ", kAlice));
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(*alice, "alice");
  const std::string* bob = checker.Authenticate(absl::StrCat("bearer ", kBob));
  ASSERT_NE(bob, nullptr);
  EXPECT_EQ(*bob, "bob");
  EXPECT_EQ(checker.Authenticate(absl::StrCat("Bearer ", kPlain)), nullptr);
  EXPECT_EQ(checker.Authenticate(""), nullptr);
  auth::TokenChecker plain(std::vector<std::string>{kPlain});
  const std::string* derived = plain.Authenticate(absl::StrCat("Bearer ", kPlain));
  ASSERT_NE(derived, nullptr);
  EXPECT_EQ(*derived, auth::DerivedCallerName(kPlain));
}

class CallerServerTest : public ::testing::Test {
 protected:
  void Start(bool tokens) {
    auth::SecurityOptions options;
    if (tokens) {
      options.tokens = std::make_shared<const auth::TokenChecker>(
          auth::TokenChecker::WithCallers({{kAlice, "alice"}, {kBob, "bob"}}));
    }
    ASSERT_THAT(server_.Start(tmp_.path() + "/data", options), IsOk());
    stub_ = v1::VideoTaskService::NewStub(
        grpc::CreateChannel(server_.address(), grpc::InsecureChannelCredentials()));
  }

  static std::unique_ptr<grpc::ClientContext> Context(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token));
    // A client cannot pick its caller: neither metadata nor labels count.
    ctx->AddMetadata("videotask.caller", "mallory");
    return ctx;
  }

  v1::Task Submit(const std::string& token, int seed) {
    v1::SubmitTaskRequest request;
    request.mutable_spec()->mutable_image()->set_content(TinyPng(seed));
    request.mutable_spec()->mutable_image()->set_filename("a.png");
    request.mutable_spec()->set_prompt_text("slow zoom");
    (*request.mutable_spec()->mutable_labels())["caller"] = "mallory";
    v1::Task task;
    grpc::Status status = stub_->SubmitTask(Context(token).get(), request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return task;
  }

  std::vector<std::string> ListCallers(const std::string& token, const std::string& caller,
                                       grpc::Status* status = nullptr) {
    v1::ListTasksRequest request;
    request.set_caller(caller);
    v1::ListTasksResponse response;
    grpc::Status s = stub_->ListTasks(Context(token).get(), request, &response);
    if (status != nullptr) *status = s;
    std::vector<std::string> callers;
    for (const v1::Task& t : response.tasks()) callers.push_back(t.caller());
    return callers;
  }

  TempDir tmp_;
  SecureServer server_;
  std::unique_ptr<v1::VideoTaskService::Stub> stub_;
};

TEST_F(CallerServerTest, EachTaskRecordsTheAuthenticatedCaller) {
  Start(/*tokens=*/true);
  EXPECT_EQ(Submit(kAlice, 1).caller(), "alice");
  EXPECT_EQ(Submit(kBob, 2).caller(), "bob");
  EXPECT_EQ(Submit(kAlice, 3).caller(), "alice");
  EXPECT_THAT(ListCallers(kBob, "alice"), ::testing::ElementsAre("alice", "alice"));
  EXPECT_THAT(ListCallers(kBob, "bob"), ::testing::ElementsAre("bob"));
  EXPECT_TRUE(ListCallers(kBob, "mallory").empty());
  EXPECT_EQ(ListCallers(kBob, "").size(), 3u);
  grpc::Status bad;
  ListCallers(kAlice, "al ice", &bad);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), AllOf(HasSubstr("caller"), HasSubstr("A-Za-z0-9")));
}

TEST_F(CallerServerTest, WithoutTokensEveryTaskIsAnonymous) {
  Start(/*tokens=*/false);
  EXPECT_EQ(Submit("", 1).caller(), "anonymous");
  EXPECT_EQ(Submit("", 2).caller(), "anonymous");
  EXPECT_EQ(ListCallers("", "anonymous").size(), 2u);
}

TEST_F(CallerServerTest, APauseRecordsTheCallerWhoPausedIt) {
  Start(/*tokens=*/true);
  v1::PauseBackendRequest request;
  request.set_name("mock");
  request.set_reason("provider outage");
  v1::BackendInfo info;
  grpc::Status status = stub_->PauseBackend(Context(kBob).get(), request, &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(info.paused());
  EXPECT_EQ(info.paused_by(), "bob");
  v1::ResumeBackendRequest resume;
  resume.set_name("mock");
  status = stub_->ResumeBackend(Context(kAlice).get(), resume, &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(info.paused());
}

}  // namespace
}  // namespace videotask::testing
