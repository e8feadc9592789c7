#include "common/thread_name.h"

#include <pthread.h>

#include <string>

namespace videotask {

void SetThreadName(absl::string_view name) {
  constexpr size_t kMaxName = 15;  // the kernel's TASK_COMM_LEN - 1
  const std::string cut(name.substr(0, kMaxName));
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace videotask
