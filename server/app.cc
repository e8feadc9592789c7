#include "server/app.h"

#include <unistd.h>

#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/http/curl_transport.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "server/store/postgres/pg_task_store.h"
#include "server/store/sqlite/sqlite_task_store.h"

namespace videotask {

absl::StatusOr<std::unique_ptr<App>> App::Create(AppConfig config, const Clock& clock,
                                                 std::unique_ptr<backends::HttpTransport> http) {
  if (config.output_dir.empty()) config.output_dir = config.data_dir + "/outputs";
  if (config.backends.empty()) {
    return absl::InvalidArgumentError("no backend is enabled (--backends)");
  }
  if (config.default_backend.empty()) {
    config.default_backend = config.backends.front().config.name;
  }
  std::unique_ptr<App> app(new App(std::move(config)));
  const AppConfig& cfg = app->config_;
  VT_RETURN_IF_ERROR(MakeDirs(cfg.data_dir));
  VT_RETURN_IF_ERROR(MakeDirs(cfg.output_dir));
  std::vector<std::string> backend_names;
  for (const backends::BackendSetup& setup : cfg.backends) {
    backend_names.push_back(setup.config.name);
  }
  app->metrics_ = std::make_unique<metrics::Metrics>(backend_names);

  if (cfg.store == "sqlite") {
    store::SqliteStoreOptions store_options;
    store_options.data_dir = cfg.data_dir;
    store_options.wal_checkpoint_pages = cfg.sqlite_wal_checkpoint_pages;
    store_options.clock = &clock;
    store_options.observer = app->metrics_.get();
    VT_ASSIGN_OR_RETURN(app->store_, store::SqliteTaskStore::Open(store_options));
  } else if (absl::StartsWith(cfg.store, "postgresql://") ||
             absl::StartsWith(cfg.store, "postgres://")) {
    store::PgStoreOptions store_options;
    store_options.conninfo = cfg.store;
    store_options.clock = &clock;
    store_options.observer = app->metrics_.get();
    absl::BitGen origin_rng;  // the composition root owns the randomness
    store_options.origin = store::NewStoreOrigin(origin_rng);
    VT_ASSIGN_OR_RETURN(app->store_, store::PgTaskStore::Open(store_options));
  } else {
    // Not echoed: a connection string may carry a password.
    return absl::InvalidArgumentError(
        "--store must be \"sqlite\" or a connection string starting with postgresql://");
  }

  VT_ASSIGN_OR_RETURN(std::vector<backends::EnabledBackend> enabled,
                      app->MakeBackends(clock, std::move(http)));
  VT_RETURN_IF_ERROR(app->MakeWebhooks(clock));

  engine::EngineOptions engine_options;
  engine_options.owner = absl::StrCat("videotaskd-", ::getpid(), "-",
                                      absl::Uniform<uint32_t>(app->rng_));
  engine_options.lease_duration = cfg.lease_duration;
  engine_options.claim_interval = cfg.claim_interval;
  engine_options.retry = cfg.retry;
  engine_options.output_dir = cfg.output_dir;
  engine_options.max_queued_tasks = cfg.max_queued_tasks;
  engine_options.retention = cfg.retention;
  engine_options.output_retention = cfg.output_retention;
  engine_options.retention_interval = cfg.retention_interval;
  engine_options.min_free_disk_bytes = cfg.min_free_disk_bytes;
  engine_options.disk_wait = cfg.disk_wait;
  engine_options.disk = cfg.disk != nullptr ? cfg.disk : &app->statvfs_;
  // PostgreSQL keeps no task data in the data folder.
  if (cfg.store == "sqlite") engine_options.data_dir = cfg.data_dir;
  engine_options.max_queued_per_caller = cfg.max_queued_per_caller;
  engine_options.daily_budget_usd_per_caller = cfg.daily_budget_usd_per_caller;
  engine_options.observer = app->metrics_.get();
  for (const backends::EnabledBackend& b : enabled) {
    engine_options.max_output_bytes = std::max(engine_options.max_output_bytes, b.config.max_output_bytes);
  }
  app->workers_ = std::make_unique<ThreadPool>(cfg.worker_threads, "engine-worker");
  app->api_pool_ = std::make_unique<ThreadPool>(cfg.api_threads, "api-worker");
  app->engine_ = std::make_unique<engine::Engine>(engine_options, *app->store_, std::move(enabled),
                                                  clock, app->rng_, *app->workers_, app->hub_);
  api::ValidatorOptions validator_options;
  validator_options.default_backend = cfg.default_backend;
  validator_options.image_root = cfg.image_root;
  validator_options.max_image_bytes = cfg.max_image_bytes;
  validator_options.webhooks_enabled = app->webhook_policy_ != nullptr;
  VT_ASSIGN_OR_RETURN(validator_options.webhook_allow_hosts,
                      backends::HostAllowList::Parse(cfg.webhook_allow_hosts));
  app->validator_ =
      std::make_unique<api::Validator>(validator_options, app->engine_->backends());
  app->service_ = std::make_unique<api::VideoTaskServiceImpl>(
      *app->engine_, *app->store_, app->hub_, *app->validator_, *app->api_pool_,
      app->wall_clock_, cfg.tokens);
  metrics::StoreGaugesOptions gauges;
  gauges.backends = backend_names;
  gauges.watchers = [hub = &app->hub_] { return hub->size(); };
  app->store_gauges_ =
      std::make_unique<metrics::StoreGauges>(gauges, *app->store_, app->wall_clock_);
  app->metrics_->Add(std::shared_ptr<prometheus::Collectable>(
      app->store_gauges_.get(), [](prometheus::Collectable*) {}));  // owned by the app
  app->metrics_->Add(std::make_shared<metrics::ProcessCollector>());
  return app;
}

absl::StatusOr<std::vector<backends::EnabledBackend>> App::MakeBackends(
    const Clock& clock, std::unique_ptr<backends::HttpTransport> http) {
  bool needs_http = false;
  for (const backends::BackendSetup& setup : config_.backends) {
    needs_http = needs_http || setup.needs_http;
  }
  if (needs_http && http == nullptr) {
    backends::CurlOptions options;
    options.clock = &clock;
    VT_ASSIGN_OR_RETURN(http, backends::CurlTransport::Create(options));
  }
  http_ = std::move(http);
  std::vector<backends::EnabledBackend> enabled;
  bool default_found = false;
  for (const backends::BackendSetup& setup : config_.backends) {
    const backends::BackendConfig& bc = setup.config;
    if (!setup.create) {
      return absl::InvalidArgumentError(absl::StrCat("backend ", bc.name, " has no factory"));
    }
    backend_rngs_.push_back(std::make_unique<absl::BitGen>());
    backends::BackendDeps deps{clock, *backend_rngs_.back(), http_.get()};
    absl::StatusOr<std::unique_ptr<backends::Backend>> backend = setup.create(bc, deps);
    if (!backend.ok()) {
      return absl::Status(backend.status().code(),
                          absl::StrCat("backend ", bc.name, ": ", backend.status().message()));
    }
    enabled.push_back(backends::EnabledBackend{bc, *std::move(backend)});
    default_found = default_found || bc.name == config_.default_backend;
  }
  if (!default_found) {
    return absl::InvalidArgumentError(absl::StrCat("--default_backend \"", config_.default_backend,
                                                   "\" is not among the enabled --backends"));
  }
  return enabled;
}

App::~App() {
  Stop();
  if (store_ != nullptr) store_->SetOutboxPolicy(nullptr);  // the policy goes first
  // A shared store's change feed must not call into the engine once it goes.
  if (store_ != nullptr) store_->SetChangeListener(nullptr);
  // The pools finish their queued work before the engine and store go.
  api_pool_.reset();
  workers_.reset();
}

absl::Status App::Start() {
  VT_RETURN_IF_ERROR(engine_->Recover());
  engine_->Start();
  store_gauges_->Start();
  if (deliverer_ != nullptr) deliverer_->Start();
  started_ = true;
  return absl::OkStatus();
}

void App::BeginDrain() { service_->BeginDrain(); }

void App::Stop() {
  if (deliverer_ != nullptr) deliverer_->Stop();
  if (store_gauges_ != nullptr) store_gauges_->Stop();
  if (engine_ != nullptr) engine_->Stop();
}

backends::Backend* App::backend(absl::string_view name) {
  const backends::EnabledBackend* b = engine_->FindBackend(name);
  return b == nullptr ? nullptr : b->backend.get();
}

}  // namespace videotask
