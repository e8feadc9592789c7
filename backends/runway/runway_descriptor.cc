// How the runway backend declares itself: its flags (defined here, in the
// translation unit that RunwayDescriptor() lives in, so a static link keeps
// them), its secret and its factory.
#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "backends/http/url_policy.h"
#include "backends/runway/runway_backend.h"
#include "common/status_macros.h"

ABSL_FLAG(int, runway_max_concurrency, 4, "runway: provider tasks running at once.");
ABSL_FLAG(double, runway_daily_budget_usd, 0,
          "runway: what its tasks may cost per UTC day, in USD (estimated: price x duration); tasks past it stay QUEUED until 00:00 UTC. 0 = no limit.");
ABSL_FLAG(absl::Duration, runway_min_submit_interval, absl::Seconds(2),
          "runway: minimum time between two creations.");
ABSL_FLAG(absl::Duration, runway_poll_interval, absl::Seconds(6),
          "runway: poll interval (at least 5s unless the base URL is a loopback address).");
ABSL_FLAG(absl::Duration, runway_poll_jitter, absl::Milliseconds(1500),
          "runway: random extra wait of up to this on top of the poll interval.");
ABSL_FLAG(std::string, runway_base_url, videotask::backends::kRunwayDefaultBaseUrl,
          "runway: API base URL (plain http only for loopback hosts).");

namespace videotask::backends {
namespace {

// The provider does not update a task more often than this.
constexpr absl::Duration kMinPollInterval = absl::Seconds(5);

absl::StatusOr<BackendSetup> ConfigureRunway(const BackendConfig& base, const EnvReader& env) {
  BackendConfig config = base;
  config.max_concurrency = absl::GetFlag(FLAGS_runway_max_concurrency);
  config.daily_budget_usd = absl::GetFlag(FLAGS_runway_daily_budget_usd);
  config.min_submit_interval = absl::GetFlag(FLAGS_runway_min_submit_interval);
  config.poll_interval = absl::GetFlag(FLAGS_runway_poll_interval);
  config.poll_jitter = absl::GetFlag(FLAGS_runway_poll_jitter);
  RunwayOptions options;
  options.base_url = absl::GetFlag(FLAGS_runway_base_url);
  options.api_secret = env(kRunwaySecretEnv);
  if (config.poll_interval < kMinPollInterval && !IsLoopbackUrl(options.base_url)) {
    return absl::InvalidArgumentError(
        "--runway_poll_interval must be at least 5s: the provider does not update a task more "
        "often (shorter intervals are allowed only for a loopback --runway_base_url)");
  }
  return RunwaySetup(std::move(config), std::move(options));
}

}  // namespace

BackendSetup RunwaySetup(BackendConfig config, RunwayOptions options) {
  BackendSetup setup;
  setup.config = std::move(config);
  setup.needs_http = true;
  setup.create = [options = std::move(options)](
                     const BackendConfig& config,
                     const BackendDeps& deps) -> absl::StatusOr<std::unique_ptr<Backend>> {
    VT_ASSIGN_OR_RETURN(std::unique_ptr<RunwayBackend> backend,
                        RunwayBackend::Create(config, options, deps));
    return std::unique_ptr<Backend>(std::move(backend));
  };
  return setup;
}

BackendDescriptor RunwayDescriptor() {
  BackendDescriptor d;
  d.name = kRunwayName;
  d.secret_env = kRunwaySecretEnv;
  d.default_enabled = DefaultEnabled::kWhenSecretSet;
  d.needs_http = true;
  d.configure = ConfigureRunway;
  return d;
}

}  // namespace videotask::backends
