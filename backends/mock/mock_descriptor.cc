// How the mock backend declares itself: its flags (defined here, in the
// translation unit that MockDescriptor() lives in, so a static link keeps
// them) and its factory.
#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "backends/mock/mock_backend.h"

ABSL_FLAG(int, mock_max_concurrency, 512, "mock: provider tasks running at once.");
ABSL_FLAG(double, mock_daily_budget_usd, 0,
          "mock: what its tasks may cost per UTC day, in USD (estimated: price x duration); tasks past it stay QUEUED until 00:00 UTC. 0 = no limit.");
ABSL_FLAG(absl::Duration, mock_min_submit_interval, absl::ZeroDuration(),
          "mock: minimum time between two creations.");
ABSL_FLAG(absl::Duration, mock_poll_interval, absl::Milliseconds(50), "mock: poll interval.");
ABSL_FLAG(std::string, mock_ledger, "",
          "mock: append every provider create to this file (\"<task id> <provider id>\"), to prove "
          "across restarts that nothing was created twice.");
ABSL_FLAG(double, mock_usd_per_second, 0.01,
          "mock: the price its model declares, in USD per output second (daily budgets).");

namespace videotask::backends {
namespace {

absl::StatusOr<BackendSetup> ConfigureMock(const BackendConfig& base, const EnvReader& env) {
  BackendConfig config = base;
  config.max_concurrency = absl::GetFlag(FLAGS_mock_max_concurrency);
  config.daily_budget_usd = absl::GetFlag(FLAGS_mock_daily_budget_usd);
  config.min_submit_interval = absl::GetFlag(FLAGS_mock_min_submit_interval);
  config.poll_interval = absl::GetFlag(FLAGS_mock_poll_interval);
  MockOptions options;
  options.ledger_path = absl::GetFlag(FLAGS_mock_ledger);
  options.usd_per_second = absl::GetFlag(FLAGS_mock_usd_per_second);
  return MockSetup(std::move(config), std::move(options));
}

}  // namespace

BackendSetup MockSetup(BackendConfig config, MockOptions options) {
  BackendSetup setup;
  setup.config = std::move(config);
  setup.create = [options = std::move(options)](
                     const BackendConfig& config,
                     const BackendDeps& deps) -> absl::StatusOr<std::unique_ptr<Backend>> {
    return std::make_unique<MockBackend>(config, deps.clock, options);
  };
  return setup;
}

BackendDescriptor MockDescriptor() {
  BackendDescriptor d;
  d.name = kMockName;
  d.default_enabled = DefaultEnabled::kAlways;
  d.configure = ConfigureMock;
  return d;
}

}  // namespace videotask::backends
