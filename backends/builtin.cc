#include "backends/builtin.h"

#include "backends/mock/mock_backend.h"
#include "common/status_macros.h"

namespace videotask::backends {

absl::Status RegisterBuiltinBackends(BackendRegistry& registry) {
  VT_RETURN_IF_ERROR(registry.Add(NewMockBackendFactory()));
  return absl::OkStatus();
}

}  // namespace videotask::backends
