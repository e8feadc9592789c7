// A small HTTP client interface, so backends are tested against a loopback
// fake with the real transport, and the engine never sees libcurl.
#ifndef VIDEOTASK_BACKENDS_HTTP_HTTP_TRANSPORT_H_
#define VIDEOTASK_BACKENDS_HTTP_HTTP_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace videotask::backends {

struct HttpRequest {
  std::string method = "GET";  // GET, POST, DELETE
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Overrides the transport's total timeout when positive.
  absl::Duration timeout = absl::ZeroDuration();
  // Larger answers fail with RESOURCE_EXHAUSTED; 0 = the transport's default.
  int64_t max_response_bytes = 0;
};

struct HttpResponse {
  int status = 0;
  // Header names lower-cased.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // empty when streamed to a sink

  // First value of a header (name in lower case), or "".
  std::string Header(absl::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
};

// Receives a streamed response body piece by piece; an error aborts the
// transfer and is returned by Send.
using BodySink = std::function<absl::Status(absl::string_view chunk)>;

// Thread-safe. Transport failures come back as:
//   UNAVAILABLE without MaybeSent(): never sent (connect/resolve failed);
//   UNAVAILABLE or DEADLINE_EXCEEDED with MaybeSent(): may have been sent
//     (timeout, reset, truncated answer) — see backends/api/errors.h;
//   RESOURCE_EXHAUSTED: the answer was larger than allowed.
// Any HTTP answer, 4xx and 5xx included, is an OK status with that code.
// Implementations never re-send a request on their own (a create must not
// reach the provider twice).
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  virtual absl::StatusOr<HttpResponse> Send(const HttpRequest& request) = 0;
  // As Send, but a 2xx body goes to `sink` instead of response.body
  // (non-2xx bodies are still collected, for error messages).
  virtual absl::StatusOr<HttpResponse> SendStreaming(const HttpRequest& request,
                                                     const BodySink& sink) = 0;
};

}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_HTTP_HTTP_TRANSPORT_H_
