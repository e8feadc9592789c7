#include "client/cli/connection.h"

#include <iostream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/files.h"

namespace videotask::cli {
namespace {

constexpr int64_t kMaxPemBytes = 1 << 20;

// True for "127.x.y.z:port", "localhost:port" and "[::1]:port" (with or
// without a "dns:///" or "ipv4:" scheme).
bool IsLoopback(absl::string_view target) {
  for (absl::string_view scheme : {"dns:///", "ipv4:", "ipv6:"}) absl::ConsumePrefix(&target, scheme);
  return absl::StartsWith(target, "127.") || absl::StartsWith(target, "localhost:") ||
         target == "localhost" || absl::StartsWith(target, "[::1]");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> Connection::Create(const GlobalOptions& options) {
  if (options.server.empty()) {
    return absl::InvalidArgumentError("--server: must name host:port");
  }
  bool tls = options.tls || !options.tls_ca_file.empty();
  if (!options.token.empty() && !tls && !IsLoopback(options.server)) {
    return absl::InvalidArgumentError(
        "--token: refusing to send a token in clear text to a non-loopback server; add --tls");
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca_file.empty()) {
      auto pem = ReadFile(options.tls_ca_file, kMaxPemBytes);
      if (!pem.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--tls-ca: cannot read ", options.tls_ca_file, ": ", pem.status().message()));
      }
      ssl.pem_root_certs = *std::move(pem);
    }
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // output chunks are up to 1 MiB plus framing
  args.SetMaxSendMessageSize(-1);     // images travel inline
  auto channel = grpc::CreateCustomChannel(options.server, creds, args);
  return std::unique_ptr<Connection>(new Connection(options, std::move(channel)));
}

Connection::Connection(const GlobalOptions& options, std::shared_ptr<grpc::Channel> channel)
    : options_(options),
      channel_(std::move(channel)),
      stub_(v1::VideoTaskService::NewStub(channel_)) {}

std::unique_ptr<grpc::ClientContext> Connection::NewContext(absl::Duration deadline) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  absl::Duration timeout = deadline != absl::InfiniteDuration()
                               ? deadline
                               : absl::Seconds(options_.rpc_timeout_seconds);
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  if (!options_.token.empty()) {
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
  return ctx;
}

std::unique_ptr<grpc::ClientContext> Connection::NewStreamContext() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!options_.token.empty()) {
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
  return ctx;
}

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kDataLoss:
      return kExitUnavailable;
    default:
      return kExitUsage;
  }
}

int ExitCodeForErrorCode(absl::string_view code) {
  if (code == "UNAVAILABLE" || code == "DEADLINE_EXCEEDED" || code == "RESOURCE_EXHAUSTED" ||
      code == "INTERNAL" || code == "UNKNOWN" || code == "ABORTED") {
    return kExitUnavailable;
  }
  return kExitUsage;
}

std::string DescribeError(const absl::Status& status, absl::string_view server) {
  std::string text = absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message());
  if (status.code() == absl::StatusCode::kUnavailable ||
      status.code() == absl::StatusCode::kDeadlineExceeded) {
    absl::StrAppend(&text, " (server ", server, "; set --server or VIDEOTASK_SERVER)");
  }
  return text;
}

int ReportError(const absl::Status& status, const GlobalOptions& options) {
  std::cerr << "videotask: " << DescribeError(status, options.server) << "\n";
  return ExitCodeFor(status);
}

}  // namespace videotask::cli
