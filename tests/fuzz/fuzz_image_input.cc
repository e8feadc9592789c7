// Fuzzes the image checks: type sniffing (PNG/JPEG/WebP structure, truncated
// and lying files) and data: URI decoding. Errors are INVALID_ARGUMENT
// naming the field; nothing crashes or reads out of bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "server/api/image_input.h"

namespace {

void CheckError(const absl::Status& status, absl::string_view field) {
  if (status.code() != absl::StatusCode::kInvalidArgument) std::abort();
  if (!absl::StrContains(status.message(), field)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::string> mime = videotask::api::SniffImage(input, "spec.image.content");
  if (mime.ok()) {
    if (*mime != "image/png" && *mime != "image/jpeg" && *mime != "image/webp") std::abort();
  } else {
    CheckError(mime.status(), "spec.image.content");
  }
  absl::StatusOr<videotask::api::DataUri> uri =
      videotask::api::ParseDataUri(input, "spec.image.uri");
  if (uri.ok()) {
    if (!absl::StartsWith(uri->mime_type, "image/")) std::abort();
  } else {
    CheckError(uri.status(), "spec.image.uri");
  }
  return 0;
}
