#include "server/api/page_token.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/ids.h"
#include "common/sha256.h"

namespace videotask::api {
namespace {

constexpr char kVersion[] = "v1";

absl::Status Malformed() {
  return absl::InvalidArgumentError(
      "page_token is malformed; pass the next_page_token of a previous ListTasks call unchanged");
}

}  // namespace

std::string FilterDigest(const store::ListQuery& query) {
  std::vector<int> states;
  for (TaskState s : query.states) states.push_back(static_cast<int>(s));
  std::sort(states.begin(), states.end());
  states.erase(std::unique(states.begin(), states.end()), states.end());
  std::string canonical;
  for (int s : states) absl::StrAppend(&canonical, s, ",");
  absl::StrAppend(&canonical, ";", query.backend.size(), ":", query.backend, ";");
  for (const auto& [k, v] : query.labels) {
    absl::StrAppend(&canonical, k.size(), ":", k, "=", v.size(), ":", v, ";");
  }
  // Only when set, so tokens of queries without it stay valid.
  if (!query.caller.empty()) {
    absl::StrAppend(&canonical, "c", query.caller.size(), ":", query.caller, ";");
  }
  return Sha256Hex(canonical).substr(0, 16);
}

std::string EncodePageToken(const store::ListCursor& cursor, absl::string_view filter_digest) {
  std::string raw = absl::StrCat(kVersion, ".", absl::ToUnixMicros(cursor.create_time), ".",
                                 cursor.id, ".", filter_digest);
  return absl::WebSafeBase64Escape(raw);
}

absl::StatusOr<store::ListCursor> DecodePageToken(absl::string_view token,
                                                  absl::string_view filter_digest) {
  if (token.size() > 256) return Malformed();
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) return Malformed();
  std::vector<std::string> parts = absl::StrSplit(raw, '.');
  int64_t micros = 0;
  if (parts.size() != 4 || parts[0] != kVersion || !absl::SimpleAtoi(parts[1], &micros) ||
      !IsWellFormedTaskId(parts[2])) {
    return Malformed();
  }
  if (parts[3] != filter_digest) {
    return absl::InvalidArgumentError(
        "page_token was issued for other filters; repeat the same states, backend and labels, "
        "or start again without a page_token");
  }
  return store::ListCursor{absl::FromUnixMicros(micros), parts[2]};
}

}  // namespace videotask::api
