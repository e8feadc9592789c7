// How the fal backend declares itself: its flags (defined here, in the
// translation unit that FalDescriptor() lives in, so a static link keeps
// them), its secret and its factory.
#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "backends/fal/fal_backend.h"
#include "backends/http/url_policy.h"
#include "common/status_macros.h"

ABSL_FLAG(std::string, fal_base_url, videotask::backends::kFalDefaultBaseUrl,
          "fal: queue API base URL (plain http only for loopback hosts).");
ABSL_FLAG(std::string, fal_storage_url, videotask::backends::kFalDefaultStorageUrl,
          "fal: storage API base URL for image uploads (plain http only for loopback hosts).");
ABSL_FLAG(int, fal_max_concurrency, 2, "fal: provider requests running at once.");
ABSL_FLAG(double, fal_daily_budget_usd, 0,
          "fal: what its tasks may cost per UTC day, in USD (estimated: price x duration); tasks past it stay QUEUED until 00:00 UTC. 0 = no limit.");
ABSL_FLAG(absl::Duration, fal_min_submit_interval, absl::ZeroDuration(),
          "fal: minimum time between two submissions.");
ABSL_FLAG(absl::Duration, fal_poll_interval, absl::Seconds(5),
          "fal: poll interval (at least 5s unless the base URL is a loopback address).");
ABSL_FLAG(absl::Duration, fal_poll_jitter, absl::Seconds(1),
          "fal: random extra wait of up to this on top of the poll interval.");

namespace videotask::backends {
namespace {

// Videos take minutes; polling faster only costs requests.
constexpr absl::Duration kMinPollInterval = absl::Seconds(5);

absl::StatusOr<BackendSetup> ConfigureFal(const BackendConfig& base, const EnvReader& env) {
  BackendConfig config = base;
  config.max_concurrency = absl::GetFlag(FLAGS_fal_max_concurrency);
  config.daily_budget_usd = absl::GetFlag(FLAGS_fal_daily_budget_usd);
  config.min_submit_interval = absl::GetFlag(FLAGS_fal_min_submit_interval);
  config.poll_interval = absl::GetFlag(FLAGS_fal_poll_interval);
  config.poll_jitter = absl::GetFlag(FLAGS_fal_poll_jitter);
  FalOptions options;
  options.base_url = absl::GetFlag(FLAGS_fal_base_url);
  options.storage_url = absl::GetFlag(FLAGS_fal_storage_url);
  options.api_key = env(kFalSecretEnv);
  if (config.poll_interval < kMinPollInterval && !IsLoopbackUrl(options.base_url)) {
    return absl::InvalidArgumentError(
        "--fal_poll_interval must be at least 5s (shorter intervals are allowed only for a "
        "loopback --fal_base_url)");
  }
  for (const std::string* url : {&options.base_url, &options.storage_url}) {
    if (absl::Status allowed = CheckUrlAllowed(*url); !allowed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(url == &options.base_url ? "--fal_base_url" : "--fal_storage_url", ": ",
                       allowed.message()));
    }
  }
  return FalSetup(std::move(config), std::move(options));
}

}  // namespace

BackendSetup FalSetup(BackendConfig config, FalOptions options) {
  BackendSetup setup;
  setup.config = std::move(config);
  setup.needs_http = true;
  setup.create = [options = std::move(options)](
                     const BackendConfig& config,
                     const BackendDeps& deps) -> absl::StatusOr<std::unique_ptr<Backend>> {
    VT_ASSIGN_OR_RETURN(std::unique_ptr<FalBackend> backend,
                        FalBackend::Create(config, options, deps));
    return std::unique_ptr<Backend>(std::move(backend));
  };
  return setup;
}

BackendDescriptor FalDescriptor() {
  BackendDescriptor d;
  d.name = kFalName;
  d.secret_env = kFalSecretEnv;
  d.default_enabled = DefaultEnabled::kWhenSecretSet;
  d.needs_http = true;
  d.configure = ConfigureFal;
  return d;
}

}  // namespace videotask::backends
