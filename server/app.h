// Wires the rooms together: store, backends, engine, API service. The only
// place where concrete classes meet (besides main).
#ifndef VIDEOTASK_SERVER_APP_H_
#define VIDEOTASK_SERVER_APP_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "backends/api/backend.h"
#include "backends/api/registry.h"
#include "backends/http/http_transport.h"
#include "common/clock.h"
#include "common/disk_space.h"
#include "common/executor.h"
#include "server/api/service.h"
#include "server/api/validation.h"
#include "server/auth/auth.h"
#include "server/engine/engine.h"
#include "server/engine/watch_hub.h"
#include "server/metrics/collectors.h"
#include "server/metrics/metrics.h"
#include "server/store/task_store.h"
#include "server/webhooks/delivery.h"
#include "server/webhooks/webhook_policy.h"

namespace videotask {

struct AppConfig {
  std::string data_dir = "./var/videotask";
  std::string output_dir;  // "" = <data_dir>/outputs
  // "sqlite" (<data_dir>/videotask.db) or a PostgreSQL connection string
  // ("postgresql://..." or "postgres://...") shared by several replicas.
  std::string store = "sqlite";
  std::string image_root;
  int64_t max_image_bytes = 16 << 20;
  // Enabled backends, in order (BackendRegistry::Configure, or a test's
  // own setups).
  std::vector<backends::BackendSetup> backends;
  std::string default_backend;  // "" = the first enabled
  int worker_threads = 64;
  // SqliteStoreOptions::wal_checkpoint_pages (--store=sqlite only).
  int sqlite_wal_checkpoint_pages = 10000;
  int api_threads = 8;
  int64_t max_queued_tasks = 1'000'000;
  int64_t max_queued_per_caller = 0;  // 0 = no limit
  double daily_budget_usd_per_caller = 0;  // USD per UTC day; 0 = no limit
  // The bearer tokens the listening port checks (null: none); the service
  // names each submit's caller from them.
  std::shared_ptr<const auth::TokenChecker> tokens;
  absl::Duration lease_duration = absl::Seconds(60);
  // EngineOptions::claim_interval: tasks submitted within it are claimed
  // together.
  absl::Duration claim_interval = absl::Milliseconds(5);
  engine::RetryPolicy retry;
  // Retention and disk-full safety (engine.h EngineOptions).
  absl::Duration retention = absl::Hours(720);
  absl::Duration output_retention = absl::ZeroDuration();
  absl::Duration retention_interval = absl::Minutes(1);
  int64_t min_free_disk_bytes = int64_t{1} << 30;
  // How long a download short of disk space waits before trying again.
  absl::Duration disk_wait = absl::Seconds(30);
  // Borrowed; null = statvfs of the real folders.
  const DiskSpace* disk = nullptr;
  // Webhooks (server/webhooks/). Off without a secret file: notify_url is
  // then refused and webhook_url must be empty.
  std::string webhook_secret_file;
  std::string webhook_url;          // every task's events go here too
  std::string webhook_allow_hosts;  // comma list (url_policy.h HostAllowList)
  webhooks::DeliveryOptions webhook_delivery;  // owner is drawn by the app
  // Tries in flight at once (the delivery pool's threads).
  int webhook_threads = 8;
};

class App {
 public:
  // `clock` is borrowed and outlives the app. Builds every backend of
  // config.backends. `http` serves every backend that needs HTTP; when it is
  // null and one does, the app makes one CurlTransport for all of them.
  static absl::StatusOr<std::unique_ptr<App>> Create(
      AppConfig config, const Clock& clock, std::unique_ptr<backends::HttpTransport> http = nullptr);
  ~App();

  // Recovers what a previous process left, then starts dispatching.
  absl::Status Start();
  // Refuses new submits and ends open streams (before Server::Shutdown).
  void BeginDrain();
  // Stops dispatching and waits for provider calls in flight.
  void Stop();

  api::VideoTaskServiceImpl& service() { return *service_; }
  engine::Engine& engine() { return *engine_; }
  store::TaskStore& store() { return *store_; }
  engine::WatchHub& hub() { return hub_; }
  // The process's metrics (engine, store and, once registered on the gRPC
  // server, calls) and the gauges read from the store at scrape time.
  metrics::Metrics& metrics() { return *metrics_; }
  metrics::StoreGauges& store_gauges() { return *store_gauges_; }
  // nullptr for a backend that is not enabled.
  backends::Backend* backend(absl::string_view name);
  const AppConfig& config() const { return config_; }

 private:
  explicit App(AppConfig config) : config_(std::move(config)) {}
  // The transport (given, or made when a backend needs one) and the backends.
  absl::StatusOr<std::vector<backends::EnabledBackend>> MakeBackends(
      const Clock& clock, std::unique_ptr<backends::HttpTransport> http);
  // The webhook policy given to the store, the transport and the delivery
  // workers (app_webhooks.cc); nothing when webhooks are off.
  absl::Status MakeWebhooks(const Clock& clock);

  AppConfig config_;
  // The service's clock for WaitTask timeouts: gRPC deadlines are wall-clock
  // times, whatever clock the engine is given.
  SystemClock wall_clock_;
  StatvfsDiskSpace statvfs_;
  absl::BitGen rng_;
  // One generator per backend: each serializes its own use.
  std::vector<std::unique_ptr<absl::BitGen>> backend_rngs_;
  std::unique_ptr<backends::HttpTransport> http_;
  std::unique_ptr<metrics::Metrics> metrics_;  // before the store and engine: they report to it
  std::unique_ptr<store::TaskStore> store_;
  std::unique_ptr<metrics::StoreGauges> store_gauges_;
  engine::WatchHub hub_;
  std::unique_ptr<ThreadPool> workers_;
  std::unique_ptr<ThreadPool> api_pool_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<api::Validator> validator_;
  std::unique_ptr<api::VideoTaskServiceImpl> service_;
  // Webhooks: after the store, so they go first.
  absl::BitGen webhook_ids_rng_;
  absl::BitGen webhook_jitter_rng_;
  std::unique_ptr<webhooks::WebhookPolicy> webhook_policy_;
  std::unique_ptr<backends::HttpTransport> webhook_http_;
  std::unique_ptr<ThreadPool> webhook_pool_;
  std::unique_ptr<webhooks::WebhookDeliverer> deliverer_;
  bool started_ = false;
};

}  // namespace videotask

#endif  // VIDEOTASK_SERVER_APP_H_
