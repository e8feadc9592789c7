// Network address helpers shared by the server and the clients.
#ifndef VIDEOTASK_COMMON_NET_H_
#define VIDEOTASK_COMMON_NET_H_

#include "absl/strings/string_view.h"

namespace videotask {

// "localhost", 127.0.0.0/8 and ::1 (with or without brackets), any case.
// Every other name, even "127.example.com", is not loopback.
bool IsLoopbackHost(absl::string_view host);

}  // namespace videotask

#endif  // VIDEOTASK_COMMON_NET_H_
