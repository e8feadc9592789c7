#include "server/auth/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <utility>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/log.h"
#include "common/text.h"

namespace videotask::auth {
namespace {

constexpr size_t kMinTokenLength = 16;
constexpr char kBearer[] = "bearer ";

std::array<unsigned char, 32> Digest(absl::string_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int size = 0;
  // SHA-256 over EVP cannot fail for in-memory input.
  EVP_Digest(data.data(), data.size(), out.data(), &size, EVP_sha256(), nullptr);
  return out;
}

absl::string_view SliceView(const grpc_slice& slice) {
  return absl::string_view(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(slice)),
                           GRPC_SLICE_LENGTH(slice));
}

// The auth metadata processor of the core API, run by gRPC's server auth
// filter for every call before the call reaches a handler.
void ProcessMetadata(void* state, grpc_auth_context* /*context*/, const grpc_metadata* md,
                     size_t num_md, grpc_process_auth_metadata_done_cb done, void* user_data) {
  const TokenChecker* checker = static_cast<std::shared_ptr<const TokenChecker>*>(state)->get();
  absl::string_view method;
  absl::string_view authorization;
  int authorization_count = 0;
  for (size_t i = 0; i < num_md; ++i) {
    absl::string_view key = SliceView(md[i].key);
    if (key == ":path") {
      method = SliceView(md[i].value);
    } else if (key == "authorization") {
      authorization = SliceView(md[i].value);
      ++authorization_count;
    }
  }
  // Two authorization headers are ambiguous: refuse rather than pick one.
  if (authorization_count <= 1 && checker->Allows(method, authorization)) {
    // The header stays with the call: the service reads it once to learn
    // the caller (TokenChecker::Authenticate). The auth context cannot carry
    // the caller, as gRPC shares it between the calls of a connection.
    done(user_data, nullptr, 0, nullptr, 0, GRPC_STATUS_OK, nullptr);
    return;
  }
  VT_LOG_DEBUG("refused a call to {}: {} bearer token", method,
               authorization.empty() ? "no" : "invalid");
  done(user_data, nullptr, 0, nullptr, 0, GRPC_STATUS_UNAUTHENTICATED,
       "missing or invalid bearer token (send \"authorization: Bearer <token>\")");
}

// Listening-port credentials built on the core API, so that one auth
// metadata processor serves plain text and TLS alike (the C++ insecure
// credentials take no processor).
class CoreServerCredentials final : public grpc::ServerCredentials {
 public:
  // Takes ownership of `creds`.
  CoreServerCredentials(grpc_server_credentials* creds,
                        std::shared_ptr<const TokenChecker> tokens)
      : creds_(creds), tokens_(std::move(tokens)) {
    if (tokens_ != nullptr) {
      grpc_auth_metadata_processor processor{};
      processor.process = &ProcessMetadata;
      // The core credentials outlive this object (the server keeps them), so
      // they hold their own reference to the checker.
      processor.state = new std::shared_ptr<const TokenChecker>(tokens_);
      processor.destroy = [](void* state) {
        delete static_cast<std::shared_ptr<const TokenChecker>*>(state);
      };
      grpc_server_credentials_set_auth_metadata_processor(creds_, processor);
    }
  }
  ~CoreServerCredentials() override { grpc_server_credentials_release(creds_); }

  void SetAuthMetadataProcessor(
      const std::shared_ptr<grpc::AuthMetadataProcessor>& /*processor*/) override {
    VT_LOG_ERROR("SetAuthMetadataProcessor is not supported on these credentials");
  }

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    return grpc_server_add_http2_port(server, addr.c_str(), creds_);
  }

  grpc_server_credentials* const creds_;
  const std::shared_ptr<const TokenChecker> tokens_;
};

}  // namespace

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string DerivedCallerName(absl::string_view token) {
  std::array<unsigned char, 32> digest = Digest(absl::StrCat("videotask caller name\n", token));
  return absl::StrCat("token-", absl::BytesToHexString(absl::string_view(
                                    reinterpret_cast<const char*>(digest.data()), 4)));
}

absl::StatusOr<std::vector<TokenEntry>> LoadTokenFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path, kMaxTokenFileBytes);
  if (!text.ok()) return text.status();
  std::vector<TokenEntry> entries;
  absl::flat_hash_map<std::string, std::pair<int, std::string>> seen;  // token -> line, caller
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    bool printable = true;
    for (char c : words[0]) printable &= c > 0x20 && c < 0x7f;
    if (words.size() > 2 || !printable) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_number,
          ": expected \"<token>\" or \"<token> <caller-name>\"; a token is one word of printable "
          "ASCII characters (text not shown)"));
    }
    if (words[0].size() < kMinTokenLength) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": tokens must be at least ",
                                                     kMinTokenLength, " characters"));
    }
    if (words.size() == 2 && !IsCallerName(words[1])) {
      // The name is not shown either: a line written the wrong way round
      // would print its token.
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": a caller name is ",
                                                     kCallerNameRule, " (text not shown)"));
    }
    TokenEntry entry{std::string(words[0]), words.size() == 2 ? std::string(words[1])
                                                              : DerivedCallerName(words[0])};
    auto [it, inserted] = seen.try_emplace(entry.token, line_number, entry.caller);
    if (!inserted && it->second.second != entry.caller) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": the token of line ",
                                                     it->second.first,
                                                     " again, with another caller name"));
    }
    entries.push_back(std::move(entry));
  }
  if (entries.empty()) {
    return absl::InvalidArgumentError(
        "no token in the file (one per line, optionally followed by a caller name; '#' starts a "
        "comment)");
  }
  return entries;
}

absl::StatusOr<std::vector<std::string>> LoadTokens(const std::string& path) {
  absl::StatusOr<std::vector<TokenEntry>> entries = LoadTokenFile(path);
  if (!entries.ok()) return entries.status();
  std::vector<std::string> tokens;
  for (TokenEntry& entry : *entries) tokens.push_back(std::move(entry.token));
  return tokens;
}

TokenChecker TokenChecker::WithCallers(const std::vector<TokenEntry>& entries) {
  TokenChecker checker;
  checker.digests_.reserve(entries.size());
  for (const TokenEntry& entry : entries) {
    checker.digests_.push_back(Digest(entry.token));
    checker.callers_.push_back(entry.caller);
  }
  return checker;
}

TokenChecker::TokenChecker(const std::vector<std::string>& tokens) {
  digests_.reserve(tokens.size());
  for (const std::string& token : tokens) {
    digests_.push_back(Digest(token));
    callers_.push_back(DerivedCallerName(token));
  }
}

const std::string* TokenChecker::Authenticate(absl::string_view authorization) const {
  constexpr size_t kPrefix = sizeof(kBearer) - 1;
  bool scheme_ok = authorization.size() > kPrefix &&
                   absl::EqualsIgnoreCase(authorization.substr(0, kPrefix), kBearer);
  absl::string_view presented = scheme_ok ? authorization.substr(kPrefix) : absl::string_view();
  // Digests have a fixed length, so the comparison time depends on neither
  // the presented value nor the tokens; every token is compared.
  std::array<unsigned char, 32> digest = Digest(presented);
  size_t match = digests_.size();
  for (size_t i = 0; i < digests_.size(); ++i) {
    const size_t equal =
        static_cast<size_t>(CRYPTO_memcmp(digests_[i].data(), digest.data(), digest.size()) == 0);
    // Branch-free: keeps the first match.
    const size_t take = equal & static_cast<size_t>(match == digests_.size());
    match = take * i + (1 - take) * match;
  }
  if (!scheme_ok || presented.empty() || match == digests_.size()) return nullptr;
  return &callers_[match];
}

bool TokenChecker::AcceptsAuthorization(absl::string_view authorization) const {
  return Authenticate(authorization) != nullptr;
}

bool TokenChecker::Allows(absl::string_view method, absl::string_view authorization) const {
  if (!method.empty() && absl::StartsWith(method, kOpenMethodPrefix)) return true;
  return AcceptsAuthorization(authorization);
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const SecurityOptions& options) {
  const TlsFiles& tls = options.tls;
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both --tls_cert and --tls_key");
  }
  if (tls.cert_file.empty() && !tls.client_ca_file.empty()) {
    return absl::InvalidArgumentError("--tls_client_ca needs --tls_cert and --tls_key");
  }
  // Creating core credentials needs the library initialised.
  grpc_init();
  grpc_server_credentials* creds = nullptr;
  if (tls.cert_file.empty()) {
    creds = grpc_insecure_server_credentials_create();
  } else {
    constexpr int64_t kMaxPem = 1 << 20;
    absl::StatusOr<std::string> cert = ReadFile(tls.cert_file, kMaxPem);
    absl::StatusOr<std::string> key = ReadFile(tls.key_file, kMaxPem);
    absl::StatusOr<std::string> client_ca = std::string();
    if (!tls.client_ca_file.empty()) client_ca = ReadFile(tls.client_ca_file, kMaxPem);
    for (const auto* file : {&cert, &key, &client_ca}) {
      if (!file->ok()) {
        grpc_shutdown();
        return absl::Status(file->status().code(),
                            absl::StrCat("TLS: ", file->status().message()));
      }
    }
    if (!absl::StrContains(*cert, "-----BEGIN") || !absl::StrContains(*key, "-----BEGIN")) {
      grpc_shutdown();
      return absl::InvalidArgumentError("TLS: --tls_cert and --tls_key must be PEM files");
    }
    grpc_ssl_pem_key_cert_pair pair{key->c_str(), cert->c_str()};
    bool mutual = !tls.client_ca_file.empty();
    creds = grpc_ssl_server_credentials_create_ex(
        mutual ? client_ca->c_str() : nullptr, &pair, 1,
        mutual ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
               : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        nullptr);
  }
  std::shared_ptr<grpc::ServerCredentials> result;
  if (creds != nullptr) {
    result = std::make_shared<CoreServerCredentials>(creds, options.tokens);
  }
  grpc_shutdown();  // the credentials object holds its own reference
  if (result == nullptr) return absl::InvalidArgumentError("TLS: the key pair was refused");
  return result;
}

}  // namespace videotask::auth
