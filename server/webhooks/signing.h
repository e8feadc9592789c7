// Standard Webhooks signatures: "v1,<base64 HMAC-SHA256 of
// "<webhook-id>.<webhook-timestamp>.<body>">", keyed by the bytes of a
// "whsec_<base64>" secret.
#ifndef VIDEOTASK_SERVER_WEBHOOKS_SIGNING_H_
#define VIDEOTASK_SERVER_WEBHOOKS_SIGNING_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace videotask::webhooks {

class WebhookSigner {
 public:
  // From the text of a secret ("whsec_<base64>", blanks around it
  // ignored). INVALID_ARGUMENT that never quotes the secret.
  static absl::StatusOr<WebhookSigner> FromSecret(absl::string_view text);
  // From a file holding the secret; the error names the file, never its text.
  static absl::StatusOr<WebhookSigner> FromFile(const std::string& path);

  // The webhook-signature header of one try.
  std::string Sign(absl::string_view id, int64_t unix_seconds, absl::string_view body) const;

 private:
  explicit WebhookSigner(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace videotask::webhooks

#endif  // VIDEOTASK_SERVER_WEBHOOKS_SIGNING_H_
