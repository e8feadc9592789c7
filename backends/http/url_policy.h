// Which URLs videotask talks to: https:// anywhere, plain http:// only to
// this machine (loopback), nothing else. Applies to the provider's base URL,
// the URLs it hands back (uploads, outputs) and every request of
// CurlTransport.
#ifndef VIDEOTASK_BACKENDS_HTTP_URL_POLICY_H_
#define VIDEOTASK_BACKENDS_HTTP_URL_POLICY_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace videotask::backends {

// True when `url` parses and its host is a loopback host (IsLoopbackHost of
// common/net.h).
bool IsLoopbackUrl(absl::string_view url);

// OK for https://<host>/..., and for http://<loopback host>/...; otherwise
// INVALID_ARGUMENT naming the rule (the message carries scheme and host
// only, never a query string or credentials).
absl::Status CheckUrlAllowed(absl::string_view url);

// "scheme://host[:port]/path" without user info, query or fragment: safe to
// put in logs and error messages (presigned URLs carry signatures in the
// query). "<invalid url>" when it does not parse.
std::string RedactUrl(absl::string_view url);

}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_HTTP_URL_POLICY_H_
