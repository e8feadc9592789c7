// What the submit commands read from the local disk and the command line:
// image folders, sidecar prompts, CSV manifests, labels, request ids.
#ifndef VIDEOTASK_CLIENT_CLI_INPUTS_H_
#define VIDEOTASK_CLIENT_CLI_INPUTS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "videotask/v1/video_task_service.pb.h"

namespace videotask::cli {

// Largest image the CLI reads (the server applies its own, usually smaller,
// limit and names it).
inline constexpr int64_t kMaxImageFileBytes = 64 << 20;

// True for a name ending in .png, .jpg, .jpeg or .webp (any case).
bool IsImageName(absl::string_view name);

// File names (not paths) of the images directly in `dir`, in byte order of
// their names. Hidden files are skipped.
absl::StatusOr<std::vector<std::string>> ListImages(const std::string& dir);

// "shot_01.png" -> "shot_01.txt".
std::string SidecarName(absl::string_view image_name);

struct ManifestRow {
  std::string image;   // file name, relative to the image folder
  std::string prompt;
  int line = 0;        // 1-based line where the row starts
};

// RFC 4180 CSV with two columns, image and prompt; quoted fields may hold
// commas, quotes ("") and newlines. A first row "image,prompt" is a header
// and skipped. Blank lines are skipped. INVALID_ARGUMENT names the line.
absl::StatusOr<std::vector<ManifestRow>> ParseManifestCsv(absl::string_view text);

// "k=v" pairs -> map. INVALID_ARGUMENT names `flag` and the bad one.
absl::StatusOr<std::map<std::string, std::string>> ParseLabels(
    const std::vector<std::string>& pairs, absl::string_view flag = "--label");

// "sd-" + 32 hex characters of SHA-256 over the image bytes, its file name
// and every spec field that shapes the video (prompt, model, ratio,
// duration, seed, backend, labels, priority, model options), each
// length-prefixed, so the same image with the same options always gets the
// same id and anything else another.
std::string StableRequestId(absl::string_view image_bytes, const v1::TaskSpec& spec);

// Strips leading and trailing whitespace (a sidecar's final newline).
std::string TrimPrompt(absl::string_view text);

}  // namespace videotask::cli

#endif  // VIDEOTASK_CLIENT_CLI_INPUTS_H_
