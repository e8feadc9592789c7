// HttpTransport over libcurl: pooled easy handles (so connections are
// reused), connect and total timeouts, TLS verification of peer and host
// always on, size caps both ways, and the error classification promised by
// http_transport.h. Never logs bodies or header values.
#ifndef VIDEOTASK_BACKENDS_HTTP_CURL_TRANSPORT_H_
#define VIDEOTASK_BACKENDS_HTTP_CURL_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backends/http/http_transport.h"
#include "common/clock.h"

struct sockaddr;

namespace videotask::backends {

struct CurlOptions {
  absl::Duration connect_timeout = absl::Seconds(5);
  // Whole request, connect included; HttpRequest::timeout overrides it.
  absl::Duration total_timeout = absl::Seconds(60);
  // A transfer slower than `low_speed_bytes_per_second` for
  // `low_speed_time` is abandoned as a timeout (stall detection for long
  // downloads). Zero duration disables it.
  int64_t low_speed_bytes_per_second = 1;
  absl::Duration low_speed_time = absl::Seconds(30);
  // Larger request bodies are refused before anything is sent.
  int64_t max_request_bytes = int64_t{256} << 20;
  // Default cap on answers when HttpRequest::max_response_bytes is 0.
  int64_t max_response_bytes = int64_t{64} << 20;
  // Empty: "videotask/<version>".
  std::string user_agent;
  // Extra CA bundle file (PEM); empty = the system store.
  std::string ca_bundle_path;
  // Idle easy handles (each with its connection cache) kept for reuse.
  int max_idle_handles = 16;
  // Refuse URLs that url_policy.h does not allow (plain http:// to a
  // non-loopback host, other schemes) before any traffic.
  bool enforce_url_policy = true;
  // When set, replaces the url_policy.h check of every request
  // (enforce_url_policy is then ignored): a transport for URLs callers give
  // (webhooks) brings its own rules.
  std::function<absl::Status(absl::string_view url)> url_check;
  // When set, asked for every address a connection is about to be opened
  // to, with the host of the request's URL (lower case, no brackets); false
  // refuses it (UNAVAILABLE, nothing sent). Checked when connecting, after
  // resolution, so a name that resolves elsewhere than it did when the URL
  // was accepted (DNS rebinding) is caught. Proxies are not used then.
  std::function<bool(absl::string_view host, const struct sockaddr* address)> address_check;
  // Times each transfer for the logs; borrowed, outlives the transport.
  // nullptr = the system clock.
  const Clock* clock = nullptr;
};

// "videotask/<version>".
std::string DefaultUserAgent();

// Thread-safe. A POST (or PATCH) always goes out on a fresh connection:
// libcurl silently re-sends a request once when a pooled connection turns
// out to be dead, and a create must never be sent twice.
class CurlTransport final : public HttpTransport {
 public:
  // Initializes libcurl once per process. FAILED_PRECONDITION when libcurl
  // was built without TLS.
  static absl::StatusOr<std::unique_ptr<CurlTransport>> Create(CurlOptions options = {});
  ~CurlTransport() override;
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override;
  absl::StatusOr<HttpResponse> SendStreaming(const HttpRequest& request,
                                             const BodySink& sink) override;

  const CurlOptions& options() const { return options_; }

 private:
  explicit CurlTransport(CurlOptions options);
  absl::StatusOr<HttpResponse> Perform(const HttpRequest& request, const BodySink* sink);
  void* AcquireHandle() ABSL_LOCKS_EXCLUDED(mu_);
  void ReleaseHandle(void* handle) ABSL_LOCKS_EXCLUDED(mu_);

  const CurlOptions options_;
  const Clock& clock_;
  void* share_ = nullptr;  // CURLSH*: DNS cache and TLS sessions
  struct ShareLocks;
  std::unique_ptr<ShareLocks> share_locks_;

  absl::Mutex mu_;
  std::vector<void*> idle_ ABSL_GUARDED_BY(mu_);  // CURL* easy handles
};

}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_HTTP_CURL_TRANSPORT_H_
