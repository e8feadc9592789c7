#include "backends/builtin.h"

#include "backends/mock/mock_backend.h"
#include "backends/runway/runway_backend.h"
#include "common/status_macros.h"

namespace videotask::backends {

absl::Status RegisterBuiltinBackends(BackendRegistry& registry) {
  VT_RETURN_IF_ERROR(registry.Add(NewMockBackendFactory()));
  VT_RETURN_IF_ERROR(registry.Add(NewRunwayBackendFactory()));
  return absl::OkStatus();
}

}  // namespace videotask::backends
