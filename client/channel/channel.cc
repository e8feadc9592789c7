#include "client/channel/channel.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "common/net.h"

namespace videotask::client {
namespace {

constexpr int64_t kMaxPemBytes = 1 << 20;

}  // namespace

bool IsLoopbackTarget(absl::string_view target) {
  for (absl::string_view scheme : {"dns:///", "ipv4:", "ipv6:"}) absl::ConsumePrefix(&target, scheme);
  // The host: "[v6]" through its bracket, otherwise up to the port's colon.
  absl::string_view host;
  if (absl::StartsWith(target, "[")) {
    size_t close = target.find(']');
    host = target.substr(0, close == absl::string_view::npos ? close : close + 1);
  } else {
    host = target.substr(0, target.find(':'));
  }
  absl::string_view rest = target.substr(host.size());
  return (rest.empty() || rest[0] == ':') && IsLoopbackHost(host);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ChannelOptions& options,
                                                           const grpc::ChannelArguments& args) {
  const auto& flags = options.flags;
  if (options.target.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flags.target, ": must name host:port"));
  }
  bool tls = options.tls || !options.tls_ca_file.empty();
  if (!options.token.empty() && !tls && !IsLoopbackTarget(options.target)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flags.token, ": refusing to send a token in clear text to a non-loopback server; add ",
                     flags.tls, " or ", flags.tls_ca_file));
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca_file.empty()) {
      auto pem = ReadFile(options.tls_ca_file, kMaxPemBytes);
      if (!pem.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(flags.tls_ca_file, ": cannot read ",
                                                       options.tls_ca_file, ": ",
                                                       pem.status().message()));
      }
      ssl.pem_root_certs = *std::move(pem);
    }
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(options.target, creds, args);
}

void AddCallCredentials(const ChannelOptions& options, grpc::ClientContext& context) {
  if (!options.token.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", options.token));
  }
}

}  // namespace videotask::client
