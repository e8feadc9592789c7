#include "backends/api/errors.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace videotask::backends {
namespace {

constexpr char kMaybeSentUrl[] = "type.videotask.dev/maybe-sent";
constexpr char kRetryAfterUrl[] = "type.videotask.dev/retry-after-ms";
constexpr char kHttpStatusUrl[] = "type.videotask.dev/http-status";

std::optional<int64_t> IntPayload(const absl::Status& status, const char* url) {
  auto cord = status.GetPayload(url);
  if (!cord.has_value()) return std::nullopt;
  int64_t value = 0;
  if (!absl::SimpleAtoi(std::string(*cord), &value)) return std::nullopt;
  return value;
}

}  // namespace

absl::Status MarkMaybeSent(absl::Status status) {
  status.SetPayload(kMaybeSentUrl, absl::Cord("1"));
  return status;
}

bool MaybeSent(const absl::Status& status) {
  return status.GetPayload(kMaybeSentUrl).has_value();
}

absl::Status WithRetryAfter(absl::Status status, absl::Duration delay) {
  status.SetPayload(kRetryAfterUrl,
                    absl::Cord(absl::StrCat(absl::ToInt64Milliseconds(delay))));
  return status;
}

std::optional<absl::Duration> RetryAfter(const absl::Status& status) {
  std::optional<int64_t> ms = IntPayload(status, kRetryAfterUrl);
  if (!ms.has_value()) return std::nullopt;
  return absl::Milliseconds(*ms);
}

absl::Status WithHttpStatus(absl::Status status, int http_status) {
  status.SetPayload(kHttpStatusUrl, absl::Cord(absl::StrCat(http_status)));
  return status;
}

std::optional<int> HttpStatus(const absl::Status& status) {
  std::optional<int64_t> code = IntPayload(status, kHttpStatusUrl);
  if (!code.has_value()) return std::nullopt;
  return static_cast<int>(*code);
}

bool IsRetryable(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
      return true;
    default:
      return false;
  }
}

}  // namespace videotask::backends
