#include "client/cli/connection.h"

#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace videotask::cli {
namespace {

client::ChannelOptions ChannelOptionsOf(const GlobalOptions& options) {
  client::ChannelOptions channel;
  channel.target = options.server;
  channel.tls = options.tls;
  channel.tls_ca_file = options.tls_ca_file;
  channel.token = options.token;
  return channel;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> Connection::Create(const GlobalOptions& options) {
  if (options.clock == nullptr) return absl::FailedPreconditionError("the CLI has no clock");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // output chunks are up to 1 MiB plus framing
  args.SetMaxSendMessageSize(-1);     // images travel inline
  auto channel = client::MakeChannel(ChannelOptionsOf(options), args);
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<Connection>(new Connection(options, *std::move(channel)));
}

Connection::Connection(const GlobalOptions& options, std::shared_ptr<grpc::Channel> channel)
    : options_(options),
      channel_options_(ChannelOptionsOf(options)),
      channel_(std::move(channel)),
      stub_(v1::VideoTaskService::NewStub(channel_)) {}

std::unique_ptr<grpc::ClientContext> Connection::NewContext(absl::Duration deadline) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  absl::Duration timeout = deadline != absl::InfiniteDuration()
                               ? deadline
                               : absl::Seconds(options_.rpc_timeout_seconds);
  ctx->set_deadline(absl::ToChronoTime(clock().Now() + timeout));
  client::AddCallCredentials(channel_options_, *ctx);
  return ctx;
}

std::unique_ptr<grpc::ClientContext> Connection::NewStreamContext() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  client::AddCallCredentials(channel_options_, *ctx);
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
