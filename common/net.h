// Network address helpers shared by the server and the clients.
#ifndef VIDEOTASK_COMMON_NET_H_
#define VIDEOTASK_COMMON_NET_H_

#include <optional>

#include "absl/strings/string_view.h"

struct sockaddr;

namespace videotask {

// "localhost", 127.0.0.0/8 and ::1 (with or without brackets), any case.
// Every other name, even "127.example.com", is not loopback.
bool IsLoopbackHost(absl::string_view host);

// True for an address on the public internet; false for private (10/8,
// 172.16/12, 192.168/16, 100.64/10, fc00::/7), loopback, link-local
// (169.254/16, fe80::/10), unspecified, multicast, broadcast and other
// reserved ranges, including IPv4 mapped or embedded in IPv6. `addr` is an
// AF_INET or AF_INET6 sockaddr; any other family is not public.
bool IsPublicAddress(const struct sockaddr* addr);

// The same for a numeric address text ("10.0.0.1", "[::1]", "::1");
// nullopt when `host` is not a numeric address (a name).
std::optional<bool> IsPublicAddressText(absl::string_view host);

}  // namespace videotask

#endif  // VIDEOTASK_COMMON_NET_H_
