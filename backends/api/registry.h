// How backends declare themselves and how the server finds them by name.
//
// Each backend's folder exports one BackendDescriptor: its name, the
// environment variable holding its secret, whether it is on by default, whether
// it talks HTTP, and a function that reads its own flags (defined in its own
// .cc) and environment into a BackendSetup. The composition root builds a
// BackendRegistry, adds the built-ins (backends/builtin.h), and turns the
// enabled names into setups; it never names a backend itself.
#ifndef VIDEOTASK_BACKENDS_API_REGISTRY_H_
#define VIDEOTASK_BACKENDS_API_REGISTRY_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backends/api/backend.h"

namespace videotask::backends {

// Reads an environment variable: "" when unset. Injected so tests need not
// touch the process environment.
using EnvReader = std::function<std::string(absl::string_view name)>;
// The process environment.
EnvReader ProcessEnv();

// One backend ready to be built: the settings the engine uses, and how to
// build it. Backend-specific options (base URL, secret, ...) are captured by
// `create` and go nowhere else, so a secret never reaches a log or a task.
struct BackendSetup {
  BackendConfig config;
  bool needs_http = false;
  std::function<absl::StatusOr<std::unique_ptr<Backend>>(const BackendConfig& config,
                                                         const BackendDeps& deps)>
      create;
};

// When a backend is enabled while --backends is left empty.
enum class DefaultEnabled {
  kNo,
  kAlways,         // after every backend enabled by its secret
  kWhenSecretSet,  // when its secret environment variable is set
};

struct BackendDescriptor {
  std::string name;        // "runway"; also the prefix of its flags
  std::string secret_env;  // environment variable of its secret; "" = none
  DefaultEnabled default_enabled = DefaultEnabled::kNo;
  bool needs_http = false;
  // Reads this backend's flags and `env` into a setup and checks them.
  // `base` holds the name and the server-wide limits (max_image_bytes). The
  // registry has checked that the secret, if any, is set.
  std::function<absl::StatusOr<BackendSetup>(const BackendConfig& base, const EnvReader& env)>
      configure;
};

// Maps names to descriptors, in the order they were added. Built in main and
// in each test, never global. Not thread-safe; filled before use.
class BackendRegistry {
 public:
  // ALREADY_EXISTS for a second descriptor with the same name,
  // INVALID_ARGUMENT for one without a name or configure function.
  absl::Status Add(BackendDescriptor descriptor);
  // NOT_FOUND, listing the known names, for an unknown one.
  absl::StatusOr<const BackendDescriptor*> Find(absl::string_view name) const;
  std::vector<std::string> Names() const;  // sorted
  const std::vector<BackendDescriptor>& descriptors() const { return descriptors_; }  // as added

  // The backends enabled when none are named: those whose secret is set and
  // that are on by default with it, in the order added, then those always on.
  std::vector<std::string> DefaultNames(const EnvReader& env) const;

  // Setups of the named backends, in the given order. INVALID_ARGUMENT for
  // an unknown name or a bad flag, FAILED_PRECONDITION naming the variable
  // when a backend's secret is not set.
  absl::StatusOr<std::vector<BackendSetup>> Configure(const std::vector<std::string>& names,
                                                      const BackendConfig& base,
                                                      const EnvReader& env) const;

 private:
  std::vector<BackendDescriptor> descriptors_;
};

}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_API_REGISTRY_H_
