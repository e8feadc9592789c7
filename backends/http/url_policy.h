// Which URLs videotask talks to: https:// anywhere, plain http:// only to
// this machine (loopback), nothing else. Applies to the provider's base URL,
// the URLs it hands back (uploads, outputs) and every request of
// CurlTransport.
#ifndef VIDEOTASK_BACKENDS_HTTP_URL_POLICY_H_
#define VIDEOTASK_BACKENDS_HTTP_URL_POLICY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sockaddr;

namespace videotask::backends {

// True when `url` parses and its host is a loopback host (IsLoopbackHost of
// common/net.h).
bool IsLoopbackUrl(absl::string_view url);

// OK for https://<host>/..., and for http://<loopback host>/...; otherwise
// INVALID_ARGUMENT naming the rule (the message carries scheme and host
// only, never a query string or credentials).
absl::Status CheckUrlAllowed(absl::string_view url);

// The host of `url`, lower case, IPv6 without brackets; "" when it does not
// parse.
std::string UrlHost(absl::string_view url);

// Hosts an outbound call to a caller-given URL (a webhook) may reach although
// the default rule refuses them.
class HostAllowList {
 public:
  HostAllowList() = default;
  // "hooks.internal,127.0.0.1,::1": comma-separated host names or
  // addresses (blanks around them ignored; IPv6 with or without brackets).
  // INVALID_ARGUMENT naming an entry that is not a host.
  static absl::StatusOr<HostAllowList> Parse(absl::string_view list);
  // Case-insensitive; `host` as UrlHost gives it.
  bool Contains(absl::string_view host) const;
  bool empty() const { return hosts_.empty(); }

 private:
  std::vector<std::string> hosts_;
};

// The rule for caller-given URLs: https:// to any host; plain http:// only to
// a listed host; a numeric private, loopback or link-local address (and
// "localhost") only when listed. INVALID_ARGUMENT naming the rule (scheme
// and host only, never the query). The address a name resolves to is
// checked when connecting (OutboundAddressAllowed).
absl::Status CheckOutboundUrl(absl::string_view url, const HostAllowList& allow);

// Whether a connection to `address` for `host` may be opened: a public
// address always, a private, loopback or link-local one only for a listed
// host.
bool OutboundAddressAllowed(absl::string_view host, const struct sockaddr* address,
                            const HostAllowList& allow);

// "scheme://host[:port]/path" without user info, query or fragment: safe to
// put in logs and error messages (presigned URLs carry signatures in the
// query). "<invalid url>" when it does not parse.
std::string RedactUrl(absl::string_view url);

}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_HTTP_URL_POLICY_H_
