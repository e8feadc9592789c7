// Transport security and caller authentication of the gRPC server: TLS
// (optionally mutual) from PEM files, and bearer tokens checked on every call
// before any handler runs. Health checks stay open so that load balancers
// need no token.
//
// The check runs inside gRPC's server auth filter (an auth metadata
// processor on the listening port's credentials), so it covers every method
// of every service registered on the port (VideoTaskService, reflection)
// with one rule, plain text and TLS alike. A refused call ends with
// UNAUTHENTICATED; no token, and no part of one, is ever logged or echoed.
#ifndef VIDEOTASK_SERVER_AUTH_AUTH_H_
#define VIDEOTASK_SERVER_AUTH_AUTH_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/security/server_credentials.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace videotask::auth {

// Method prefix that stays callable without a token.
inline constexpr char kOpenMethodPrefix[] = "/grpc.health.v1.Health/";
// Longest token file we read.
inline constexpr int64_t kMaxTokenFileBytes = 1 << 20;

// Equal length and content, in time that depends only on the lengths.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// Reads tokens, one per line; surrounding whitespace is trimmed, blank lines
// and lines starting with '#' are skipped. INVALID_ARGUMENT when the file
// holds no token or a token has inner whitespace or is shorter than 16
// characters (the message names the line number, never its text); the
// file's own error when it cannot be read.
absl::StatusOr<std::vector<std::string>> LoadTokens(const std::string& path);

// Decides whether a call may proceed. Thread-safe (immutable).
class TokenChecker {
 public:
  // Keeps only digests of the tokens.
  explicit TokenChecker(const std::vector<std::string>& tokens);

  // True when `authorization` is "Bearer <token>" (scheme case-insensitive)
  // for one of the tokens. Every token is compared, in constant time, on
  // fixed-length digests: the time taken tells nothing about the tokens.
  bool AcceptsAuthorization(absl::string_view authorization) const;

  // The full decision for a call to `method` ("/pkg.Service/Method").
  bool Allows(absl::string_view method, absl::string_view authorization) const;

  size_t size() const { return digests_.size(); }

 private:
  std::vector<std::array<unsigned char, 32>> digests_;
};

struct TlsFiles {
  std::string cert_file;       // PEM certificate chain of the server
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // PEM roots for client certificates; "" = no mutual TLS
};

struct SecurityOptions {
  // Both cert_file and key_file set = TLS; both empty = plain text.
  TlsFiles tls;
  // null = no authentication.
  std::shared_ptr<const TokenChecker> tokens;
};

// Credentials for ServerBuilder::AddListeningPort. With TLS, the files are
// read now: INVALID_ARGUMENT for half a key pair, the file's error for an
// unreadable one. With mutual TLS, clients without a certificate signed by
// the client CA are refused during the handshake.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const SecurityOptions& options);

}  // namespace videotask::auth

#endif  // VIDEOTASK_SERVER_AUTH_AUTH_H_
