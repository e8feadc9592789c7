// Fuzzes ListTasks page-token decoding: garbage is refused with
// INVALID_ARGUMENT (never a crash), and whatever decodes re-encodes to a
// token that decodes to the same cursor.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "server/api/page_token.h"
#include "server/store/task_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  videotask::store::ListQuery query;
  const std::string digest = videotask::api::FilterDigest(query);
  absl::StatusOr<videotask::store::ListCursor> cursor =
      videotask::api::DecodePageToken(input, digest);
  if (!cursor.ok()) {
    if (cursor.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    if (!absl::StrContains(cursor.status().message(), "page_token")) std::abort();
    return 0;
  }
  std::string again = videotask::api::EncodePageToken(*cursor, digest);
  absl::StatusOr<videotask::store::ListCursor> round =
      videotask::api::DecodePageToken(again, digest);
  if (!round.ok() || round->id != cursor->id || round->create_time != cursor->create_time) {
    std::abort();
  }
  return 0;
}
