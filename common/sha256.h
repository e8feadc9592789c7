// SHA-256 and HMAC-SHA256 over OpenSSL.
#ifndef VIDEOTASK_COMMON_SHA256_H_
#define VIDEOTASK_COMMON_SHA256_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace videotask {

// Lower-case hex digest of `data`.
std::string Sha256Hex(absl::string_view data);

// The raw 32-byte HMAC-SHA256 of `data` under `key`.
std::string HmacSha256(absl::string_view key, absl::string_view data);

// Incremental digest for streamed data (downloads).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(absl::string_view data);
  std::string HexDigest();  // finishes the digest; call once

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace videotask

#endif  // VIDEOTASK_COMMON_SHA256_H_
