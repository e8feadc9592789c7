#include "backends/builtin.h"

#include "backends/fal/fal_backend.h"
#include "backends/mock/mock_backend.h"
#include "backends/replicate/replicate_backend.h"
#include "backends/runway/runway_backend.h"
#include "common/status_macros.h"

namespace videotask::backends {

absl::Status RegisterBuiltinBackends(BackendRegistry& registry) {
  // One line per backend. The order is the order of the default
  // --backends: those enabled by their secret first, the always-on ones last.
  VT_RETURN_IF_ERROR(registry.Add(RunwayDescriptor()));
  VT_RETURN_IF_ERROR(registry.Add(FalDescriptor()));
  VT_RETURN_IF_ERROR(registry.Add(ReplicateDescriptor()));
  VT_RETURN_IF_ERROR(registry.Add(MockDescriptor()));
  return absl::OkStatus();
}

}  // namespace videotask::backends
