// Checks on image bytes and image references before a task is accepted.
#ifndef VIDEOTASK_SERVER_API_IMAGE_INPUT_H_
#define VIDEOTASK_SERVER_API_IMAGE_INPUT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace videotask::api {

// "image/png", "image/jpeg" or "image/webp" from the bytes' structure, or
// INVALID_ARGUMENT naming `field` when the bytes are none of them or are cut
// short (a PNG without IEND, a JPEG without its end marker, a WebP whose RIFF
// size disagrees with its length).
absl::StatusOr<std::string> SniffImage(absl::string_view bytes, absl::string_view field);

// Decodes "data:image/<type>;base64,<payload>" into bytes and its declared
// type; INVALID_ARGUMENT naming `field` otherwise.
struct DataUri {
  std::string mime_type;
  std::string bytes;
};
absl::StatusOr<DataUri> ParseDataUri(absl::string_view uri, absl::string_view field);

// Resolves `relative` under `root` (both made canonical, symlinks followed)
// and returns the real path; INVALID_ARGUMENT naming `field` when it is
// absolute, escapes the root, or does not name a regular file.
absl::StatusOr<std::string> ResolveUnderRoot(const std::string& root, const std::string& relative,
                                             absl::string_view field);

}  // namespace videotask::api

#endif  // VIDEOTASK_SERVER_API_IMAGE_INPUT_H_
