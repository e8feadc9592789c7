#include "server/api/image_input.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace videotask::api {
namespace {

constexpr absl::string_view kPngSignature("\x89PNG\r\n\x1a\n", 8);
constexpr absl::string_view kPngIend("\0\0\0\0IEND\xae\x42\x60\x82", 12);

uint32_t LittleEndian32(absl::string_view b, size_t at) {
  return static_cast<uint32_t>(static_cast<unsigned char>(b[at])) |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 1])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 2])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 3])) << 24;
}

absl::Status Truncated(absl::string_view field, absl::string_view type) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " looks like ", type, " but is truncated or corrupt"));
}

}  // namespace

absl::StatusOr<std::string> SniffImage(absl::string_view b, absl::string_view field) {
  if (absl::StartsWith(b, kPngSignature)) {
    if (b.size() < kPngSignature.size() + 12 + 25 || !absl::EndsWith(b, kPngIend)) {
      return Truncated(field, "a PNG");
    }
    return std::string("image/png");
  }
  if (b.size() >= 3 && b.substr(0, 3) == "\xff\xd8\xff") {
    // The end-of-image marker, allowing a little trailing padding.
    absl::string_view tail = b.substr(b.size() > 64 ? b.size() - 64 : 0);
    if (b.size() < 8 || tail.find("\xff\xd9") == absl::string_view::npos) {
      return Truncated(field, "a JPEG");
    }
    return std::string("image/jpeg");
  }
  if (b.size() >= 12 && b.substr(0, 4) == "RIFF" && b.substr(8, 4) == "WEBP") {
    if (b.size() < 20 || LittleEndian32(b, 4) + 8 != b.size()) return Truncated(field, "a WebP");
    return std::string("image/webp");
  }
  return absl::InvalidArgumentError(absl::StrCat(
      field, " is not a PNG, JPEG or WebP image (allowed: image/png, image/jpeg, image/webp)"));
}

absl::StatusOr<DataUri> ParseDataUri(absl::string_view uri, absl::string_view field) {
  constexpr absl::string_view kPrefix = "data:image/";
  size_t comma = uri.find(',');
  if (!absl::StartsWith(uri, kPrefix) || comma == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be https://... or data:image/<png|jpeg|webp>;base64,<data>"));
  }
  absl::string_view header = uri.substr(5, comma - 5);  // image/png;base64
  if (!absl::EndsWith(header, ";base64")) {
    return absl::InvalidArgumentError(absl::StrCat(field, " data URI must be base64 (\";base64,\")"));
  }
  DataUri out;
  out.mime_type = absl::AsciiStrToLower(header.substr(0, header.size() - 7));
  if (out.mime_type != "image/png" && out.mime_type != "image/jpeg" &&
      out.mime_type != "image/webp") {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " data URI type is \"", out.mime_type,
        "\"; allowed: image/png, image/jpeg, image/webp"));
  }
  if (!absl::Base64Unescape(uri.substr(comma + 1), &out.bytes) || out.bytes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " data URI payload is not valid base64"));
  }
  return out;
}

absl::StatusOr<std::string> ResolveUnderRoot(const std::string& root, const std::string& relative,
                                             absl::string_view field) {
  if (relative.empty() || relative.front() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be a relative path inside the server's image root"));
  }
  if (relative.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(field, " contains a NUL byte"));
  }
  char real_root[PATH_MAX];
  if (::realpath(root.c_str(), real_root) == nullptr) {
    return absl::FailedPreconditionError("the server's image root is not accessible");
  }
  std::string joined = absl::StrCat(real_root, "/", relative);
  char real[PATH_MAX];
  if (::realpath(joined.c_str(), real) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " \"", relative, "\" does not exist under the server's image root"));
  }
  std::string resolved(real);
  std::string prefix = absl::StrCat(real_root, "/");
  if (!absl::StartsWith(resolved, prefix)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " \"", relative, "\" resolves outside the server's image root (\"..\" and symlinks "
        "out of the root are refused)"));
  }
  struct stat st;
  if (::stat(resolved.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(field, " \"", relative, "\" is not a regular file"));
  }
  return resolved;
}

}  // namespace videotask::api
