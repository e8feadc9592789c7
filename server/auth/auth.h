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
// An accepted call keeps its authorization header, from which the service
// learns the caller (TokenChecker::Authenticate): gRPC gives the processor
// the connection's auth context, shared by all its calls, so the caller of
// one call cannot be recorded there.
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

// One line of the token file: a token and the caller it stands for.
struct TokenEntry {
  std::string token;
  std::string caller;
};

// The caller name of a token line that names none: "token-" and the first 8
// hex digits of a domain-separated SHA-256 of the token. Stable for a token
// wherever its line sits; tells nothing usable about the token.
std::string DerivedCallerName(absl::string_view token);

// Reads the token file: one entry per line, "<token>" or
// "<token> <caller-name>" (caller names: common/text.h IsCallerName; a line
// without one gets DerivedCallerName). Surrounding whitespace is trimmed,
// blank lines and lines starting with '#' are skipped. Several tokens may
// name one caller; one token may not name two. INVALID_ARGUMENT when the
// file holds no token, a line has more than two words, a token is not
// printable ASCII or shorter than 16 characters, or a caller name breaks the
// rule (the message names the line number, never its text); the file's own
// error when it cannot be read.
absl::StatusOr<std::vector<TokenEntry>> LoadTokenFile(const std::string& path);
// The tokens of LoadTokenFile alone.
absl::StatusOr<std::vector<std::string>> LoadTokens(const std::string& path);

// Decides whether a call may proceed. Thread-safe (immutable).
class TokenChecker {
 public:
  // Keeps only digests of the tokens, each with its caller name.
  static TokenChecker WithCallers(const std::vector<TokenEntry>& entries);
  // Tokens whose callers are DerivedCallerName.
  explicit TokenChecker(const std::vector<std::string>& tokens);

  // The caller of `authorization` ("Bearer <token>") or nullptr when it
  // names no token. Constant time as AcceptsAuthorization.
  const std::string* Authenticate(absl::string_view authorization) const;

  // True when `authorization` is "Bearer <token>" (scheme case-insensitive)
  // for one of the tokens. Every token is compared, in constant time, on
  // fixed-length digests: the time taken tells nothing about the tokens.
  bool AcceptsAuthorization(absl::string_view authorization) const;

  // The full decision for a call to `method` ("/pkg.Service/Method").
  bool Allows(absl::string_view method, absl::string_view authorization) const;

  size_t size() const { return digests_.size(); }

 private:
  std::vector<std::array<unsigned char, 32>> digests_;
  std::vector<std::string> callers_;  // callers_[i] goes with digests_[i]

  TokenChecker() = default;
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
