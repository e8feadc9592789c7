// Registers every backend this binary was built with.
#ifndef VIDEOTASK_BACKENDS_BUILTIN_H_
#define VIDEOTASK_BACKENDS_BUILTIN_H_

#include "absl/status/status.h"
#include "backends/api/registry.h"

namespace videotask::backends {

absl::Status RegisterBuiltinBackends(BackendRegistry& registry);

}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_BUILTIN_H_
