#include "common/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/ascii.h"

namespace videotask {

bool IsLoopbackHost(absl::string_view host_in) {
  std::string host = absl::AsciiStrToLower(host_in);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    return std::memcmp(&v6, &in6addr_loopback, sizeof(v6)) == 0;
  }
  return false;
}

namespace {

bool IsPublicV4(uint32_t a) {  // host byte order
  auto in = [a](uint32_t net, int bits) {
    return bits == 0 || (a >> (32 - bits)) == (net >> (32 - bits));
  };
  return !(in(0x00000000, 8) ||    // "this" network
           in(0x0A000000, 8) ||    // private
           in(0x64400000, 10) ||   // shared address space (CGNAT)
           in(0x7F000000, 8) ||    // loopback
           in(0xA9FE0000, 16) ||   // link-local
           in(0xAC100000, 12) ||   // private
           in(0xC0000000, 24) ||   // IETF protocol assignments
           in(0xC0A80000, 16) ||   // private
           in(0xC6120000, 15) ||   // benchmarking
           in(0xE0000000, 4) ||    // multicast
           in(0xF0000000, 4));     // reserved, broadcast
}

bool IsPublicV6(const in6_addr& a) {
  const uint8_t* b = a.s6_addr;
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d).
  bool zero10 = true;
  for (int i = 0; i < 10; ++i) zero10 = zero10 && b[i] == 0;
  if (zero10 && ((b[10] == 0xff && b[11] == 0xff) || (b[10] == 0 && b[11] == 0))) {
    const uint32_t v4 = (uint32_t{b[12]} << 24) | (uint32_t{b[13]} << 16) |
                        (uint32_t{b[14]} << 8) | uint32_t{b[15]};
    return IsPublicV4(v4);  // also covers :: and ::1
  }
  if ((b[0] & 0xfe) == 0xfc) return false;                   // unique local fc00::/7
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return false;  // link-local fe80::/10
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return false;  // site-local fec0::/10
  if (b[0] == 0xff) return false;                            // multicast
  if (b[0] == 0x20 && b[1] == 0x02) {                        // 6to4: the embedded v4
    return IsPublicV4((uint32_t{b[2]} << 24) | (uint32_t{b[3]} << 16) | (uint32_t{b[4]} << 8) |
                      uint32_t{b[5]});
  }
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) {  // NAT64 64:ff9b::/96
    return IsPublicV4((uint32_t{b[12]} << 24) | (uint32_t{b[13]} << 16) |
                      (uint32_t{b[14]} << 8) | uint32_t{b[15]});
  }
  return (b[0] & 0xe0) == 0x20;  // only global unicast 2000::/3
}

}  // namespace

bool IsPublicAddress(const struct sockaddr* addr) {
  if (addr == nullptr) return false;
  if (addr->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(addr);
    return IsPublicV4(ntohl(v4->sin_addr.s_addr));
  }
  if (addr->sa_family == AF_INET6) {
    return IsPublicV6(reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr);
  }
  return false;
}

std::optional<bool> IsPublicAddressText(absl::string_view host_in) {
  std::string host(host_in);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return IsPublicV4(ntohl(v4.s_addr));
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IsPublicV6(v6);
  return std::nullopt;
}

}  // namespace videotask
