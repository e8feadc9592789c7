// How the clients (the CLI and the load generator) reach a server: plain text
// or TLS, and the bearer token sent with every call.
#ifndef VIDEOTASK_CLIENT_CHANNEL_CHANNEL_H_
#define VIDEOTASK_CLIENT_CHANNEL_CHANNEL_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace videotask::client {

struct ChannelOptions {
  std::string target;       // host:port, optionally with a gRPC scheme
  bool tls = false;         // TLS with the system's roots unless tls_ca_file
  std::string tls_ca_file;  // PEM roots to trust; implies TLS
  std::string token;        // bearer token; "" = none. Never printed.

  // The flags that set the fields above, named in errors.
  struct FlagNames {
    absl::string_view target = "--server";
    absl::string_view tls = "--tls";
    absl::string_view tls_ca_file = "--tls-ca";
    absl::string_view token = "--token";
  } flags;
};

// True when the host of `target` ("host[:port]" or "[v6][:port]", with or
// without a "dns:///", "ipv4:" or "ipv6:" scheme) is IsLoopbackHost.
bool IsLoopbackTarget(absl::string_view target);

// Builds the channel (no I/O yet: an unreachable server shows on the first
// call as UNAVAILABLE). INVALID_ARGUMENT, naming the flag, for an empty
// target, an unreadable CA file, or a token that would travel in clear text
// to anything but a loopback address.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ChannelOptions& options,
                                                           const grpc::ChannelArguments& args);

// Adds the bearer token (if any) to a call's metadata.
void AddCallCredentials(const ChannelOptions& options, grpc::ClientContext& context);

}  // namespace videotask::client

#endif  // VIDEOTASK_CLIENT_CHANNEL_CHANNEL_H_
