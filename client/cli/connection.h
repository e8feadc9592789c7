// The CLI's channel to the server, and how errors become exit codes.
#ifndef VIDEOTASK_CLIENT_CLI_CONNECTION_H_
#define VIDEOTASK_CLIENT_CLI_CONNECTION_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/channel/channel.h"
#include "common/clock.h"
#include "videotask/v1/video_task_service.grpc.pb.h"

namespace videotask::cli {

// Process exit codes of every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitTaskFailed = 1;   // a task failed or was cancelled
inline constexpr int kExitUsage = 2;        // usage or validation error
inline constexpr int kExitUnavailable = 3;  // server unreachable or unavailable

// The global options every command shares.
struct GlobalOptions {
  std::string server = "127.0.0.1:50051";
  bool json = false;
  bool tls = false;
  std::string tls_ca_file;  // PEM roots; "" = the system's roots
  std::string token;        // bearer token; "" = none. Never printed.
  double rpc_timeout_seconds = 30;
  // The time source of deadlines, ages and retries; borrowed from main,
  // outlives every command. Required.
  const Clock* clock = nullptr;
};

class Connection {
 public:
  // Builds the channel (no I/O yet: an unreachable server shows on the first
  // call as UNAVAILABLE). A token is refused over plaintext to anything but a
  // loopback address. FAILED_PRECONDITION without options.clock.
  static absl::StatusOr<std::unique_ptr<Connection>> Create(const GlobalOptions& options);

  v1::VideoTaskService::Stub& stub() { return *stub_; }
  const Clock& clock() const { return *options_.clock; }

  // A context for a unary call: the --rpc-timeout deadline plus credentials.
  // `deadline` overrides the default when set (e.g. WaitTask's long poll).
  std::unique_ptr<grpc::ClientContext> NewContext(
      absl::Duration deadline = absl::InfiniteDuration()) const;
  // A context for a stream that may run for a long time: no deadline.
  std::unique_ptr<grpc::ClientContext> NewStreamContext() const;

 private:
  Connection(const GlobalOptions& options, std::shared_ptr<grpc::Channel> channel);

  GlobalOptions options_;
  client::ChannelOptions channel_options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VideoTaskService::Stub> stub_;
};

// grpc::Status -> absl::Status (same code, the server's message).
absl::Status FromGrpc(const grpc::Status& status);

// The exit code for an error: UNAVAILABLE, DEADLINE_EXCEEDED,
// RESOURCE_EXHAUSTED, INTERNAL, UNKNOWN and ABORTED are the server's trouble
// (3); every other code is the caller's request (2). OK is 0.
int ExitCodeFor(const absl::Status& status);
// The same for a per-item error code of BatchSubmitTasks ("INVALID_ARGUMENT").
int ExitCodeForErrorCode(absl::string_view code);

// "UNAVAILABLE: <message>", with a hint for an unreachable server.
std::string DescribeError(const absl::Status& status, absl::string_view server);

// Prints DescribeError to stderr and returns ExitCodeFor(status).
int ReportError(const absl::Status& status, const GlobalOptions& options);

}  // namespace videotask::cli

#endif  // VIDEOTASK_CLIENT_CLI_CONNECTION_H_
