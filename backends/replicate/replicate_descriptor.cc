// How the replicate backend declares itself: its flags (defined here, in the
// translation unit that ReplicateDescriptor() lives in, so a static link
// keeps them), its secret and its factory.
#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "backends/http/url_policy.h"
#include "backends/replicate/replicate_backend.h"
#include "common/status_macros.h"

ABSL_FLAG(std::string, replicate_base_url, videotask::backends::kReplicateDefaultBaseUrl,
          "replicate: API base URL (plain http only for loopback hosts).");
ABSL_FLAG(int, replicate_max_concurrency, 4, "replicate: predictions running at once.");
ABSL_FLAG(double, replicate_daily_budget_usd, 0,
          "replicate: what its tasks may cost per UTC day, in USD (estimated: price x duration); tasks past it stay QUEUED until 00:00 UTC. 0 = no limit.");
ABSL_FLAG(absl::Duration, replicate_min_submit_interval, absl::ZeroDuration(),
          "replicate: minimum time between two creations.");
ABSL_FLAG(absl::Duration, replicate_poll_interval, absl::Seconds(5),
          "replicate: poll interval (at least 5s unless the base URL is a loopback address).");
ABSL_FLAG(absl::Duration, replicate_poll_jitter, absl::Seconds(1),
          "replicate: random extra wait of up to this on top of the poll interval.");

namespace videotask::backends {
namespace {

// Polling a prediction more often only spends the rate limit.
constexpr absl::Duration kMinPollInterval = absl::Seconds(5);

absl::StatusOr<BackendSetup> ConfigureReplicate(const BackendConfig& base, const EnvReader& env) {
  BackendConfig config = base;
  config.max_concurrency = absl::GetFlag(FLAGS_replicate_max_concurrency);
  config.daily_budget_usd = absl::GetFlag(FLAGS_replicate_daily_budget_usd);
  config.min_submit_interval = absl::GetFlag(FLAGS_replicate_min_submit_interval);
  config.poll_interval = absl::GetFlag(FLAGS_replicate_poll_interval);
  config.poll_jitter = absl::GetFlag(FLAGS_replicate_poll_jitter);
  ReplicateOptions options;
  options.base_url = absl::GetFlag(FLAGS_replicate_base_url);
  options.api_token = env(kReplicateSecretEnv);
  if (config.poll_interval < kMinPollInterval && !IsLoopbackUrl(options.base_url)) {
    return absl::InvalidArgumentError(
        "--replicate_poll_interval must be at least 5s (shorter intervals are allowed only for "
        "a loopback --replicate_base_url)");
  }
  return ReplicateSetup(std::move(config), std::move(options));
}

}  // namespace

BackendSetup ReplicateSetup(BackendConfig config, ReplicateOptions options) {
  BackendSetup setup;
  setup.config = std::move(config);
  setup.needs_http = true;
  setup.create = [options = std::move(options)](
                     const BackendConfig& config,
                     const BackendDeps& deps) -> absl::StatusOr<std::unique_ptr<Backend>> {
    VT_ASSIGN_OR_RETURN(std::unique_ptr<ReplicateBackend> backend,
                        ReplicateBackend::Create(config, options, deps));
    return std::unique_ptr<Backend>(std::move(backend));
  };
  return setup;
}

BackendDescriptor ReplicateDescriptor() {
  BackendDescriptor d;
  d.name = kReplicateName;
  d.secret_env = kReplicateSecretEnv;
  d.default_enabled = DefaultEnabled::kWhenSecretSet;
  d.needs_http = true;
  d.configure = ConfigureReplicate;
  return d;
}

}  // namespace videotask::backends
