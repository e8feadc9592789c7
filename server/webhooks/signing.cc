#include "server/webhooks/signing.h"

#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "common/sha256.h"

namespace videotask::webhooks {

absl::StatusOr<WebhookSigner> WebhookSigner::FromSecret(absl::string_view text) {
  absl::string_view secret = absl::StripAsciiWhitespace(text);
  if (!absl::ConsumePrefix(&secret, "whsec_")) {
    return absl::InvalidArgumentError("the webhook secret must have the form whsec_<base64>");
  }
  std::string key;
  if (!absl::Base64Unescape(secret, &key) || key.size() < 16) {
    return absl::InvalidArgumentError(
        "the webhook secret after whsec_ must be base64 of at least 16 bytes");
  }
  return WebhookSigner(std::move(key));
}

absl::StatusOr<WebhookSigner> WebhookSigner::FromFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path, 4096);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--webhook_secret_file ", path, " cannot be read: ", text.status().message()));
  }
  absl::StatusOr<WebhookSigner> signer = FromSecret(*text);
  if (!signer.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--webhook_secret_file ", path, ": ", signer.status().message()));
  }
  return signer;
}

std::string WebhookSigner::Sign(absl::string_view id, int64_t unix_seconds,
                                absl::string_view body) const {
  const std::string content = absl::StrCat(id, ".", unix_seconds, ".", body);
  return absl::StrCat("v1,", absl::Base64Escape(HmacSha256(key_, content)));
}

}  // namespace videotask::webhooks
