// Bearer tokens, TLS and mutual TLS on the real gRPC server: every
// VideoTaskService method and reflection refuse callers without a valid
// token (UNAUTHENTICATED); health stays open; plain-text clients cannot talk
// to a TLS server; the CLI speaks both.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/sync_stream.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "client/loadgen/loadgen.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/auth/auth.h"
#include "tests/hardening/secure_server.h"
#include "tests/hardening/test_pki.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "videotask/v1/video_task_service.grpc.pb.h"

namespace videotask::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "tok_3f9a1c7e5b2d4a6f8e0c1b3d5f7a9c2e";
constexpr char kOtherToken[] = "tok_second_caller_0123456789abcdef";

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// ---- tokens ------------------------------------------------------------

TEST(ConstantTimeEqualsTest, ComparesContentAndLength) {
  EXPECT_TRUE(auth::ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(auth::ConstantTimeEquals("", ""));
  EXPECT_FALSE(auth::ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(auth::ConstantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(auth::ConstantTimeEquals("abc", ""));
}

TEST(LoadTokensTest, ReadsOnePerLineSkippingCommentsAndBlanks) {
  TempDir tmp;
  std::string path = tmp.path() + "/tokens";
  WriteText(path, absl::StrCat("# callers\n\n  ", kToken, "  \r\n", kOtherToken, "\n"));
  VT_ASSERT_OK_AND_ASSIGN(std::vector<std::string> tokens, auth::LoadTokens(path));
  EXPECT_THAT(tokens, ::testing::ElementsAre(kToken, kOtherToken));
}

TEST(LoadTokensTest, RefusesEmptyShortOrSpacedTokensWithoutEchoingThem) {
  TempDir tmp;
  std::string path = tmp.path() + "/tokens";
  WriteText(path, "# nothing here\n\n");
  EXPECT_THAT(auth::LoadTokens(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no token")));
  WriteText(path, "shortsecret\n");
  EXPECT_THAT(auth::LoadTokens(path), StatusIs(absl::StatusCode::kInvalidArgument,
                                               AllOf(HasSubstr("line 1"), Not(HasSubstr("shortsecret")))));
  WriteText(path, absl::StrCat(kToken, "\nhalf of a secret-pass-phrase\n"));
  EXPECT_THAT(auth::LoadTokens(path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("line 2"), Not(HasSubstr("secret-pass")))));
  EXPECT_THAT(auth::LoadTokens(tmp.path() + "/missing"), Not(IsOk()));
}

TEST(TokenCheckerTest, AcceptsOnlyBearerOfAKnownToken) {
  auth::TokenChecker checker({kToken, kOtherToken});
  EXPECT_TRUE(checker.AcceptsAuthorization(absl::StrCat("Bearer ", kToken)));
  EXPECT_TRUE(checker.AcceptsAuthorization(absl::StrCat("bearer ", kOtherToken)));
  EXPECT_FALSE(checker.AcceptsAuthorization(""));
  EXPECT_FALSE(checker.AcceptsAuthorization("Bearer "));
  EXPECT_FALSE(checker.AcceptsAuthorization(kToken));  // no scheme
  EXPECT_FALSE(checker.AcceptsAuthorization(absl::StrCat("Basic ", kToken)));
  EXPECT_FALSE(checker.AcceptsAuthorization(absl::StrCat("Bearer ", kToken, "x")));
  std::string prefix(kToken);
  prefix.pop_back();
  EXPECT_FALSE(checker.AcceptsAuthorization(absl::StrCat("Bearer ", prefix)));
  EXPECT_FALSE(checker.AcceptsAuthorization(absl::StrCat("Bearer  ", kToken)));
  EXPECT_TRUE(checker.Allows("/grpc.health.v1.Health/Check", ""));
  EXPECT_FALSE(checker.Allows("/grpc.health.v1.HealthX/Check", ""));
  EXPECT_FALSE(checker.Allows("/videotask.v1.VideoTaskService/GetTask", ""));
}

// ---- the server --------------------------------------------------------

class SecureServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VT_ASSERT_OK_AND_ASSIGN(pki_, MakeTestPki(tmp_.path()));
    data_dir_ = tmp_.path() + "/data";
  }

  void StartServer(bool tls, bool mutual, bool tokens) {
    auth::SecurityOptions options;
    if (tls) {
      options.tls.cert_file = pki_.server_cert_file;
      options.tls.key_file = pki_.server_key_file;
      if (mutual) options.tls.client_ca_file = pki_.client_cert_file;
    }
    if (tokens) {
      options.tokens = std::make_shared<const auth::TokenChecker>(
          std::vector<std::string>{kToken, kOtherToken});
    }
    ASSERT_THAT(server_.Start(data_dir_, options), IsOk());
  }

  std::shared_ptr<grpc::Channel> Channel(bool tls, const std::string& client_cert = "",
                                         const std::string& client_key = "") {
    std::shared_ptr<grpc::ChannelCredentials> creds;
    if (tls) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = pki_.server_cert;
      ssl.pem_cert_chain = client_cert;
      ssl.pem_private_key = client_key;
      creds = grpc::SslCredentials(ssl);
    } else {
      creds = grpc::InsecureChannelCredentials();
    }
    return grpc::CreateChannel(server_.address(), creds);
  }

  static std::unique_ptr<grpc::ClientContext> Context(const std::string& authorization) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!authorization.empty()) ctx->AddMetadata("authorization", authorization);
    return ctx;
  }

  // Calls every VideoTaskService method and reflection with `authorization`;
  // returns each call's code.
  std::vector<std::pair<std::string, grpc::StatusCode>> CallEverything(
      grpc::Channel& channel, const std::string& authorization) {
    auto stub = v1::VideoTaskService::NewStub(std::shared_ptr<grpc::Channel>(
        &channel, [](grpc::Channel*) {}));
    std::vector<std::pair<std::string, grpc::StatusCode>> codes;
    v1::Task task;
    {
      v1::SubmitTaskRequest request;
      request.mutable_spec()->mutable_image()->set_content(TinyPng(1));
      request.mutable_spec()->mutable_image()->set_filename("a.png");
      request.mutable_spec()->set_prompt_text("slow zoom");
      codes.emplace_back("SubmitTask", stub->SubmitTask(Context(authorization).get(), request, &task).error_code());
    }
    {
      v1::BatchSubmitTasksRequest request;
      v1::BatchSubmitTasksResponse response;
      codes.emplace_back("BatchSubmitTasks",
                         stub->BatchSubmitTasks(Context(authorization).get(), request, &response).error_code());
    }
    std::string id = task.id().empty() ? "01J0Z3YV6Q8W3C2M5N7P9R1T4X" : task.id();
    {
      v1::GetTaskRequest request;
      request.set_id(id);
      v1::Task reply;
      codes.emplace_back("GetTask", stub->GetTask(Context(authorization).get(), request, &reply).error_code());
    }
    {
      v1::ListTasksRequest request;
      v1::ListTasksResponse reply;
      codes.emplace_back("ListTasks", stub->ListTasks(Context(authorization).get(), request, &reply).error_code());
    }
    {
      v1::WaitTaskRequest request;
      request.set_id(id);
      request.mutable_timeout()->set_seconds(5);
      v1::Task reply;
      codes.emplace_back("WaitTask", stub->WaitTask(Context(authorization).get(), request, &reply).error_code());
    }
    {
      v1::WatchTaskRequest request;
      request.set_id(id);
      auto ctx = Context(authorization);
      auto reader = stub->WatchTask(ctx.get(), request);
      v1::Task reply;
      while (reader->Read(&reply)) {
      }
      codes.emplace_back("WatchTask", reader->Finish().error_code());
    }
    {
      v1::ReadTaskOutputRequest request;
      request.set_id(id);
      auto ctx = Context(authorization);
      auto reader = stub->ReadTaskOutput(ctx.get(), request);
      v1::OutputChunk chunk;
      while (reader->Read(&chunk)) {
      }
      codes.emplace_back("ReadTaskOutput", reader->Finish().error_code());
    }
    {
      v1::CancelTaskRequest request;
      request.set_id(id);
      v1::Task reply;
      codes.emplace_back("CancelTask", stub->CancelTask(Context(authorization).get(), request, &reply).error_code());
    }
    {
      v1::ListBackendsRequest request;
      v1::ListBackendsResponse reply;
      codes.emplace_back("ListBackends", stub->ListBackends(Context(authorization).get(), request, &reply).error_code());
    }
    {
      // Reflection, spoken as raw bytes: a ServerReflectionRequest whose
      // list_services (field 7) is "".
      grpc::internal::RpcMethod method(
          "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
          grpc::internal::RpcMethod::BIDI_STREAMING);
      auto ctx = Context(authorization);
      std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
          grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
              &channel, method, ctx.get()));
      grpc::Slice slice(std::string("\x3a\x00", 2));
      grpc::ByteBuffer request(&slice, 1);
      stream->Write(request);
      stream->WritesDone();
      grpc::ByteBuffer response;
      std::string all;
      while (stream->Read(&response)) {
        std::vector<grpc::Slice> slices;
        if (response.Dump(&slices).ok()) {
          for (const grpc::Slice& s : slices) all.append(reinterpret_cast<const char*>(s.begin()), s.size());
        }
      }
      grpc::Status status = stream->Finish();
      if (status.ok()) {
        EXPECT_THAT(all, HasSubstr("videotask.v1.VideoTaskService"));
      }
      codes.emplace_back("ServerReflectionInfo", status.error_code());
    }
    return codes;
  }

  grpc::StatusCode Health(grpc::Channel& channel) {
    auto stub = grpc::health::v1::Health::NewStub(
        std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = stub->Check(Context("").get(), request, &response);
    if (status.ok()) {
      EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
    }
    return status.error_code();
  }

  TempDir tmp_;
  TestPki pki_;
  std::string data_dir_;
  SecureServer server_;
};

void ExpectAll(const std::vector<std::pair<std::string, grpc::StatusCode>>& codes,
               grpc::StatusCode want) {
  ASSERT_EQ(codes.size(), 10u);
  for (const auto& [method, code] : codes) {
    EXPECT_EQ(code, want) << method;
  }
}

void ExpectNoneUnauthenticated(const std::vector<std::pair<std::string, grpc::StatusCode>>& codes) {
  ASSERT_EQ(codes.size(), 10u);
  for (const auto& [method, code] : codes) {
    EXPECT_NE(code, grpc::StatusCode::UNAUTHENTICATED) << method;
    EXPECT_NE(code, grpc::StatusCode::UNAVAILABLE) << method;
  }
}

TEST_F(SecureServerTest, EveryMethodNeedsAValidTokenButHealthIsOpen) {
  StartServer(/*tls=*/false, /*mutual=*/false, /*tokens=*/true);
  auto channel = Channel(false);
  ExpectAll(CallEverything(*channel, ""), grpc::StatusCode::UNAUTHENTICATED);
  ExpectAll(CallEverything(*channel, "Bearer tok_wrong_wrong_wrong_wrong_wrong"),
            grpc::StatusCode::UNAUTHENTICATED);
  ExpectAll(CallEverything(*channel, kToken), grpc::StatusCode::UNAUTHENTICATED);
  ExpectAll(CallEverything(*channel, absl::StrCat("Basic ", kToken)),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Health(*channel), grpc::StatusCode::OK);
  ExpectNoneUnauthenticated(CallEverything(*channel, absl::StrCat("Bearer ", kToken)));
  ExpectNoneUnauthenticated(CallEverything(*channel, absl::StrCat("Bearer ", kOtherToken)));
  // Nothing was submitted by the refused calls: only the two accepted rounds.
  v1::ListTasksRequest request;
  v1::ListTasksResponse response;
  auto stub = v1::VideoTaskService::NewStub(channel);
  ASSERT_TRUE(stub->ListTasks(Context(absl::StrCat("Bearer ", kToken)).get(), request, &response).ok());
  EXPECT_EQ(response.tasks_size(), 2);
}

TEST_F(SecureServerTest, RefusalSaysWhatIsMissingAndNeverEchoesTheToken) {
  StartServer(false, false, true);
  auto stub = v1::VideoTaskService::NewStub(Channel(false));
  v1::ListBackendsRequest request;
  v1::ListBackendsResponse reply;
  grpc::Status status =
      stub->ListBackends(Context("Bearer tok_guess_guess_guess_guess").get(), request, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("bearer token"));
  EXPECT_THAT(status.error_message(), Not(HasSubstr("tok_guess")));
}

TEST_F(SecureServerTest, WithoutTokensEverythingIsOpen) {
  StartServer(false, false, false);
  auto channel = Channel(false);
  ExpectNoneUnauthenticated(CallEverything(*channel, ""));
}

TEST_F(SecureServerTest, TlsServerServesTlsClientsAndRefusesPlainText) {
  StartServer(/*tls=*/true, /*mutual=*/false, /*tokens=*/true);
  auto tls = Channel(true);
  ExpectNoneUnauthenticated(CallEverything(*tls, absl::StrCat("Bearer ", kToken)));
  ExpectAll(CallEverything(*tls, "Bearer tok_wrong_wrong_wrong_wrong_wrong"),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Health(*tls), grpc::StatusCode::OK);
  // A plain-text client cannot even reach health.
  auto plain = Channel(false);
  EXPECT_EQ(Health(*plain), grpc::StatusCode::UNAVAILABLE);
  ExpectAll(CallEverything(*plain, absl::StrCat("Bearer ", kToken)), grpc::StatusCode::UNAVAILABLE);
  // A TLS client that does not trust the server's certificate is refused.
  grpc::SslCredentialsOptions wrong_roots;
  wrong_roots.pem_root_certs = pki_.other_cert;
  auto untrusting = grpc::CreateChannel(server_.address(), grpc::SslCredentials(wrong_roots));
  EXPECT_EQ(Health(*untrusting), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SecureServerTest, MutualTlsNeedsAClientCertificateFromTheClientCa) {
  StartServer(/*tls=*/true, /*mutual=*/true, /*tokens=*/false);
  auto good = Channel(true, pki_.client_cert, pki_.client_key);
  EXPECT_EQ(Health(*good), grpc::StatusCode::OK);
  ExpectNoneUnauthenticated(CallEverything(*good, ""));
  auto anonymous = Channel(true);
  EXPECT_EQ(Health(*anonymous), grpc::StatusCode::UNAVAILABLE);
  auto stranger = Channel(true, pki_.other_cert, pki_.other_key);
  EXPECT_EQ(Health(*stranger), grpc::StatusCode::UNAVAILABLE);
}

TEST(SecurityOptionsTest, RefusesHalfAKeyPairAndNonPem) {
  TempDir tmp;
  auth::SecurityOptions options;
  options.tls.cert_file = tmp.path() + "/x.crt";
  EXPECT_THAT(auth::MakeServerCredentials(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--tls_key")));
  options.tls.key_file = tmp.path() + "/x.key";
  WriteText(options.tls.cert_file, "not a certificate");
  WriteText(options.tls.key_file, "not a key");
  EXPECT_THAT(auth::MakeServerCredentials(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("PEM")));
  auth::SecurityOptions mutual_only;
  mutual_only.tls.client_ca_file = tmp.path() + "/ca.crt";
  EXPECT_THAT(auth::MakeServerCredentials(mutual_only),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--tls_cert")));
}

// ---- the CLI -----------------------------------------------------------

struct CliRun {
  int exit_code = -1;
  std::string output;
};

CliRun RunCli(const std::string& args) {
  std::string command = absl::StrCat(VT_CLI_PATH, " ", args, " 2>&1");
  CliRun run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) run.output.append(buffer, n);
  int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

TEST_F(SecureServerTest, CliSpeaksTlsAndTokens) {
  StartServer(/*tls=*/true, /*mutual=*/false, /*tokens=*/true);
  std::string server = absl::StrCat("--server ", server_.address(), " --rpc-timeout 10");
  CliRun ok = RunCli(absl::StrCat(server, " --tls-ca ", pki_.server_cert_file, " --token ", kToken,
                               " backends"));
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_THAT(ok.output, HasSubstr("mock"));
  CliRun wrong = RunCli(absl::StrCat(server, " --tls-ca ", pki_.server_cert_file,
                                  " --token tok_wrong_wrong_wrong_wrong backends"));
  EXPECT_EQ(wrong.exit_code, 2) << wrong.output;
  EXPECT_THAT(wrong.output, HasSubstr("UNAUTHENTICATED"));
  EXPECT_THAT(wrong.output, Not(HasSubstr("tok_wrong")));
  CliRun missing = RunCli(absl::StrCat(server, " --tls-ca ", pki_.server_cert_file, " backends"));
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_THAT(missing.output, HasSubstr("UNAUTHENTICATED"));
  CliRun plain = RunCli(absl::StrCat(server, " --token ", kToken, " backends"));
  EXPECT_EQ(plain.exit_code, 3) << plain.output;
  EXPECT_THAT(plain.output, Not(HasSubstr(kToken)));
}

TEST_F(SecureServerTest, LoadGeneratorSpeaksTlsAndTokens) {
  StartServer(/*tls=*/true, /*mutual=*/false, /*tokens=*/true);
  loadgen::LoadOptions options;
  options.channel.target = server_.address();
  options.channel.tls_ca_file = pki_.server_cert_file;
  options.channel.token = kToken;
  options.mode = loadgen::Mode::kSubmit;
  options.in_flight = 4;
  options.channels = 1;
  options.max_items = 12;
  options.rpc_timeout = absl::Seconds(10);
  auto ok = loadgen::RunLoad(options);
  VT_ASSERT_OK(ok.status());
  EXPECT_EQ(ok->items, 12);
  EXPECT_THAT(ok->errors, ::testing::IsEmpty());

  options.channel.token = "tok_wrong_wrong_wrong_wrong_wrong";
  auto wrong = loadgen::RunLoad(options);
  VT_ASSERT_OK(wrong.status());
  EXPECT_EQ(wrong->items, 0);
  EXPECT_EQ(wrong->errors["UNAUTHENTICATED"], 12);

  // A token never travels in clear text beyond loopback.
  options.channel.target = "videotask.invalid:50051";
  options.channel.tls_ca_file.clear();
  options.channel.flags = {"--target", "--tls", "--tls_ca", "--token"};
  EXPECT_THAT(loadgen::RunLoad(options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--token")));
}

}  // namespace
}  // namespace videotask::testing
