// Names the calling thread, so `top -H`, `perf report --sort comm` and a
// debugger show which part of the server a thread belongs to.
#ifndef VIDEOTASK_COMMON_THREAD_NAME_H_
#define VIDEOTASK_COMMON_THREAD_NAME_H_

#include "absl/strings/string_view.h"

namespace videotask {

// Linux keeps 15 bytes of a thread's name; longer names are cut there.
// Best effort: a failure leaves the name as it was.
void SetThreadName(absl::string_view name);

}  // namespace videotask

#endif  // VIDEOTASK_COMMON_THREAD_NAME_H_
