// videotaskd: the videotask gRPC server.
#include <malloc.h>
#include <signal.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backends/api/registry.h"
#include "backends/builtin.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "server/app.h"
#include "server/auth/auth.h"
#include "server/dashboard/dashboard.h"
#include "server/http/http_server.h"
#include "server/http/probes.h"
#include "server/metrics/rpc_interceptor.h"
#include "videotask/version.h"

namespace videotask {

// Every backend this binary was built with.
absl::StatusOr<backends::BackendRegistry> BuiltinRegistry() {
  backends::BackendRegistry registry;
  absl::Status added = backends::RegisterBuiltinBackends(registry);
  if (!added.ok()) return added;
  return registry;
}

// --backends's help, from the registry.
std::string BackendsFlagHelp() {
  absl::StatusOr<backends::BackendRegistry> registry = BuiltinRegistry();
  if (!registry.ok()) return std::string(registry.status().message());
  std::vector<std::string> secrets;
  for (const backends::BackendDescriptor& d : registry->descriptors()) {
    if (d.default_enabled == backends::DefaultEnabled::kWhenSecretSet) {
      secrets.push_back(d.secret_env);
    }
  }
  std::string help = absl::StrCat("Comma list of enabled backends (",
                                  absl::StrJoin(registry->Names(), ", "), "). Empty = \"",
                                  absl::StrJoin(registry->DefaultNames(
                                                    [](absl::string_view) { return ""; }),
                                                ","),
                                  "\"");
  if (!secrets.empty()) {
    absl::StrAppend(&help, ", or \"",
                    absl::StrJoin(registry->DefaultNames([](absl::string_view) { return "set"; }),
                                  ","),
                    "\" when ", absl::StrJoin(secrets, " and "),
                    secrets.size() == 1 ? " is" : " are", " set (each only when its own is)");
  }
  if (secrets.size() <= 1) help = help.substr(0, help.find(" (each"));
  return absl::StrCat(help, ".");
}

}  // namespace videotask

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "Address to serve gRPC on (host:port). Loopback by default; port 0 picks a free port "
          "(see --port_file).");
ABSL_FLAG(std::string, port_file, "",
          "When set, the port actually bound is written to this file (decimal, newline) once the "
          "server is serving.");
ABSL_FLAG(std::string, data_dir, "./var/videotask",
          "Directory of the SQLite queue (videotask.db) and the image blobs.");
ABSL_FLAG(std::string, store, "sqlite",
          "Task queue: \"sqlite\" (in --data_dir) or a PostgreSQL connection string "
          "(postgresql://user@host:port/db?...) shared by several videotaskd replicas.");
ABSL_FLAG(std::string, output_dir, "", "Directory for output videos; empty = <data_dir>/outputs.");
ABSL_FLAG(std::string, backends, "", videotask::BackendsFlagHelp());
ABSL_FLAG(std::string, default_backend, "",
          "Backend for tasks that name none; empty = the first of --backends.");
ABSL_FLAG(std::string, image_root, "",
          "Directory that spec.image.server_path is confined to; empty = server_path images are "
          "refused.");
ABSL_FLAG(int64_t, max_image_bytes, 16 << 20,
          "Largest accepted image in bytes (gRPC's receive limit is raised to match).");
ABSL_FLAG(int64_t, max_queued_tasks, 1'000'000,
          "Submits beyond this many QUEUED tasks get RESOURCE_EXHAUSTED.");
ABSL_FLAG(absl::Duration, retention, absl::Hours(720),
          "Delete SUCCEEDED, FAILED and CANCELLED tasks (with their images) whose end time is "
          "older than this; 0 keeps them forever. Output files are not touched "
          "(see --output_retention).");
ABSL_FLAG(absl::Duration, output_retention, absl::ZeroDuration(),
          "Delete the output files of SUCCEEDED tasks whose end time is older than this; the task "
          "then says so (output_removed_time). 0 (the default) keeps output files.");
ABSL_FLAG(absl::Duration, retention_interval, absl::Minutes(1), "How often retention runs.");
ABSL_FLAG(int64_t, min_free_disk, int64_t{1} << 30,
          "Bytes that must stay free in the data folder and the output folder: below it submits "
          "get RESOURCE_EXHAUSTED and downloads wait. 0 turns the check off.");
ABSL_FLAG(int64_t, max_queued_per_caller, 0,
          "Submits of one caller beyond this many of its QUEUED tasks get RESOURCE_EXHAUSTED; "
          "0 = no limit.");
ABSL_FLAG(double, daily_budget_usd_per_caller, 0,
          "What one caller's tasks may cost per UTC day, in USD (estimated: price x duration); "
          "tasks past it stay QUEUED until 00:00 UTC. Each backend has its own "
          "--<backend>_daily_budget_usd. 0 = no limit.");
ABSL_FLAG(int, sqlite_wal_checkpoint_pages, 10000,
          "With --store=sqlite: copy the write-ahead log into the database every this many "
          "pages (more = fewer copies of pages many commits touch, a larger log file).");
ABSL_FLAG(int, worker_threads, 64,
          "Most threads making provider calls (create, poll, download); started as calls need them.");
ABSL_FLAG(absl::Duration, lease_duration, absl::Seconds(60),
          "How long a claimed task stays with this process without renewal.");
ABSL_FLAG(int, retry_max_attempts, 5, "Tries of one step before a task fails with the last error.");
ABSL_FLAG(absl::Duration, retry_initial_backoff, absl::Seconds(2),
          "Backoff ceiling after the first failure (doubles each try, full jitter).");
ABSL_FLAG(absl::Duration, retry_max_backoff, absl::Minutes(2), "Largest backoff between tries.");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(30),
          "On SIGTERM/SIGINT, how long in-flight RPCs may take to finish.");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warn, error or off.");
ABSL_FLAG(std::string, log_format, "text",
          "text, or json: one JSON object per line (time, level, message, and task_id, backend, "
          "provider_task_id, request_id where known).");
ABSL_FLAG(std::string, http_listen, "127.0.0.1:50052",
          "Address of the HTTP port (host:port): /metrics (Prometheus), /healthz, /readyz and the "
          "dashboard (/, see --http_dashboard). Empty "
          "= no HTTP port; port 0 picks a free port (see --http_port_file). Uses the TLS and "
          "token flags of gRPC; /healthz and /readyz need no token.");
ABSL_FLAG(bool, http_dashboard, true,
          "Serve the operators' web dashboard at / on the HTTP port (its data needs the bearer "
          "token when --auth_token_file is set).");
ABSL_FLAG(std::string, http_port_file, "",
          "When set, the HTTP port actually bound is written to this file (decimal, newline).");
ABSL_FLAG(absl::Duration, drain_delay, absl::ZeroDuration(),
          "On SIGTERM/SIGINT, how long /readyz answers 503 (and gRPC health NOT_SERVING) while "
          "still serving, before new calls are refused and the ports close: time for load "
          "balancers to notice.");

ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain of the server; with --tls_key, gRPC is served over TLS.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM roots for mutual TLS: clients must present a certificate they signed.");
ABSL_FLAG(std::string, auth_token_file, "",
          "File of bearer tokens, one per line, each optionally followed by the caller name it "
          "stands for (\"<token> <caller>\"; '#' comments): every call but health checks must "
          "send \"authorization: Bearer <token>\" or gets UNAUTHENTICATED.");

ABSL_FLAG(std::string, webhook_secret_file, "",
          "File holding the webhook signing secret, \"whsec_<base64>\" (Standard Webhooks). "
          "Turns webhooks on: TaskSpec.notify_url and --webhook_url are refused without it.");
ABSL_FLAG(std::string, webhook_url, "",
          "A URL that gets the webhooks of every task (besides each task's notify_url).");
ABSL_FLAG(std::string, webhook_allow_hosts, "",
          "Comma list of hosts webhooks may reach although the default rule refuses them: "
          "plain http:// and private, loopback or link-local addresses (checked when "
          "connecting). Default: https:// to public addresses only.");
ABSL_FLAG(absl::Duration, webhook_timeout, absl::Seconds(10),
          "Time allowed for one webhook try, connect included.");
ABSL_FLAG(absl::Duration, webhook_retry_initial, absl::Seconds(5),
          "Delay before the second try of a webhook; doubled for each further try (+-20% "
          "jitter) up to --webhook_retry_max.");
ABSL_FLAG(absl::Duration, webhook_retry_max, absl::Hours(1), "Longest delay between two tries.");
ABSL_FLAG(absl::Duration, webhook_retry_for, absl::Hours(72),
          "How long after its event a webhook is retried (at least 24h) before it is failed.");
ABSL_FLAG(int32_t, webhook_threads, 8, "Webhook tries in flight at once (their own threads).");
ABSL_FLAG(int32_t, webhook_per_host, 2, "Webhook tries in flight to one receiver host.");
ABSL_FLAG(absl::Duration, webhook_poll_interval, absl::Milliseconds(500),
          "How often the webhook outbox is read for due messages.");

namespace videotask {
namespace {

struct Fatal {
  std::string message;
};

// The names in --backends, or the registry's default list.
std::vector<std::string> EnabledBackends(const backends::BackendRegistry& registry,
                                         const backends::EnvReader& env) {
  std::string list = absl::GetFlag(FLAGS_backends);
  if (list.empty()) return registry.DefaultNames(env);
  std::vector<std::string> names;
  for (absl::string_view name : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    names.emplace_back(absl::StripAsciiWhitespace(name));
  }
  return names;
}

absl::Status WebhookConfigFromFlags(AppConfig& config) {
  config.webhook_secret_file = absl::GetFlag(FLAGS_webhook_secret_file);
  config.webhook_url = absl::GetFlag(FLAGS_webhook_url);
  config.webhook_allow_hosts = absl::GetFlag(FLAGS_webhook_allow_hosts);
  config.webhook_threads = absl::GetFlag(FLAGS_webhook_threads);
  webhooks::DeliveryOptions& d = config.webhook_delivery;
  d.timeout = absl::GetFlag(FLAGS_webhook_timeout);
  d.retry_initial = absl::GetFlag(FLAGS_webhook_retry_initial);
  d.retry_max = absl::GetFlag(FLAGS_webhook_retry_max);
  d.retry_for = absl::GetFlag(FLAGS_webhook_retry_for);
  d.per_host = absl::GetFlag(FLAGS_webhook_per_host);
  d.poll_interval = absl::GetFlag(FLAGS_webhook_poll_interval);
  if (d.retry_for < absl::Hours(24)) {
    return absl::InvalidArgumentError("--webhook_retry_for must be at least 24h");
  }
  if (d.retry_max < d.retry_initial || d.poll_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--webhook_retry_max must be at least --webhook_retry_initial, and "
        "--webhook_poll_interval positive");
  }
  if (config.webhook_threads < 1 || config.webhook_threads > 256) {
    return absl::InvalidArgumentError("--webhook_threads must be 1..256");
  }
  return absl::OkStatus();
}

absl::StatusOr<AppConfig> ConfigFromFlags() {
  VT_ASSIGN_OR_RETURN(backends::BackendRegistry registry, BuiltinRegistry());
  AppConfig config;
  config.data_dir = absl::GetFlag(FLAGS_data_dir);
  config.store = absl::GetFlag(FLAGS_store);
  config.output_dir = absl::GetFlag(FLAGS_output_dir);
  config.image_root = absl::GetFlag(FLAGS_image_root);
  config.max_image_bytes = absl::GetFlag(FLAGS_max_image_bytes);
  config.default_backend = absl::GetFlag(FLAGS_default_backend);
  config.worker_threads = absl::GetFlag(FLAGS_worker_threads);
  config.sqlite_wal_checkpoint_pages = absl::GetFlag(FLAGS_sqlite_wal_checkpoint_pages);
  config.max_queued_tasks = absl::GetFlag(FLAGS_max_queued_tasks);
  config.max_queued_per_caller = absl::GetFlag(FLAGS_max_queued_per_caller);
  config.daily_budget_usd_per_caller = absl::GetFlag(FLAGS_daily_budget_usd_per_caller);
  config.lease_duration = absl::GetFlag(FLAGS_lease_duration);
  config.retention = absl::GetFlag(FLAGS_retention);
  config.output_retention = absl::GetFlag(FLAGS_output_retention);
  config.retention_interval = absl::GetFlag(FLAGS_retention_interval);
  config.min_free_disk_bytes = absl::GetFlag(FLAGS_min_free_disk);
  if (config.retention < absl::ZeroDuration() || config.output_retention < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--retention and --output_retention must be 0 (keep) or a positive duration such as 720h");
  }
  if (config.retention_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--retention_interval must be positive, e.g. 1m");
  }
  if (config.min_free_disk_bytes < 0) {
    return absl::InvalidArgumentError("--min_free_disk must be 0 (no check) or a number of bytes");
  }
  config.retry.max_attempts = absl::GetFlag(FLAGS_retry_max_attempts);
  config.retry.initial_backoff = absl::GetFlag(FLAGS_retry_initial_backoff);
  config.retry.max_backoff = absl::GetFlag(FLAGS_retry_max_backoff);
  if (config.max_image_bytes <= 0 || config.max_image_bytes > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError("--max_image_bytes must be 1..1073741824");
  }
  if (config.worker_threads < 1 || config.worker_threads > 1024) {
    return absl::InvalidArgumentError("--worker_threads must be 1..1024");
  }
  if (config.sqlite_wal_checkpoint_pages < 1 || config.sqlite_wal_checkpoint_pages > 1'000'000) {
    return absl::InvalidArgumentError(
        "--sqlite_wal_checkpoint_pages must be 1..1000000 (pages of 4 KiB; default 10000)");
  }
  if (config.max_queued_per_caller < 0) {
    return absl::InvalidArgumentError("--max_queued_per_caller must be 0 (no limit) or more");
  }
  if (!(config.daily_budget_usd_per_caller >= 0) ||
      !std::isfinite(config.daily_budget_usd_per_caller)) {
    return absl::InvalidArgumentError(
        "--daily_budget_usd_per_caller must be a number >= 0 (0 = no limit)");
  }
  if (config.retry.max_attempts < 1) {
    return absl::InvalidArgumentError("--retry_max_attempts must be at least 1");
  }
  VT_RETURN_IF_ERROR(WebhookConfigFromFlags(config));
  // Each backend reads its own flags (defined in its folder) and secret.
  backends::BackendConfig base;
  base.max_image_bytes = config.max_image_bytes;
  const backends::EnvReader env = backends::ProcessEnv();
  VT_ASSIGN_OR_RETURN(config.backends,
                      registry.Configure(EnabledBackends(registry, env), base, env));
  return config;
}

// TLS and bearer tokens from the flags, read before anything starts so a bad
// file stops the process at once.
struct Security {
  auth::SecurityOptions options;
  std::shared_ptr<grpc::ServerCredentials> credentials;
};

absl::StatusOr<Security> SecurityFromFlags() {
  Security security;
  security.options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  security.options.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  security.options.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  if (!absl::GetFlag(FLAGS_auth_token_file).empty()) {
    absl::StatusOr<std::vector<auth::TokenEntry>> tokens =
        auth::LoadTokenFile(absl::GetFlag(FLAGS_auth_token_file));
    if (!tokens.ok()) {
      return absl::Status(tokens.status().code(),
                          absl::StrCat("--auth_token_file: ", tokens.status().message()));
    }
    security.options.tokens =
        std::make_shared<const auth::TokenChecker>(auth::TokenChecker::WithCallers(*tokens));
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      auth::MakeServerCredentials(security.options);
  if (!credentials.ok()) return credentials.status();
  security.credentials = *std::move(credentials);
  return security;
}

sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

void LogSecurity(const auth::SecurityOptions& security) {
  VT_LOG_INFO("transport: {}{}; callers: {}",
              security.tls.cert_file.empty() ? "plain text" : "TLS",
              security.tls.client_ca_file.empty() ? "" : " with client certificates",
              security.tokens == nullptr
                  ? "not authenticated"
                  : absl::StrCat("bearer token (", security.tokens->size(), " accepted)"));
}

// The HTTP port with its routes, or null when --http_listen is empty.
absl::StatusOr<std::unique_ptr<http::HttpServer>> StartHttp(const auth::SecurityOptions& security,
                                                            App& app,
                                                            const http::Readiness& readiness,
                                                            dashboard::Dashboard* dashboard) {
  if (absl::GetFlag(FLAGS_http_listen).empty()) return nullptr;
  http::HttpServerOptions options;
  options.listen = absl::GetFlag(FLAGS_http_listen);
  options.tls = security.tls;
  options.tokens = security.tokens;
  options.threads = 16;  // the dashboard's event streams each hold one while open
  VT_ASSIGN_OR_RETURN(std::unique_ptr<http::HttpServer> server,
                      http::HttpServer::Create(options));
  http::AddProbeRoutes(*server, readiness);
  metrics::Metrics& metrics = app.metrics();
  server->Get("/metrics", http::HttpServer::Access::kProtected,
              [&metrics](const httplib::Request&, httplib::Response& res) {
                res.set_content(metrics.Scrape(), "text/plain; version=0.0.4; charset=utf-8");
              });
  if (dashboard != nullptr) dashboard->AddRoutes(*server);
  VT_RETURN_IF_ERROR(server->Start());
  VT_LOG_INFO("HTTP ({}) on port {}: /metrics, /healthz, /readyz{}", server->tls() ? "TLS" : "plain",
              server->port(), dashboard != nullptr ? ", the dashboard at /" : "");
  if (!absl::GetFlag(FLAGS_http_port_file).empty()) {
    absl::Status written = WriteFileAtomically(absl::GetFlag(FLAGS_http_port_file),
                                               absl::StrCat(server->port(), "\n"));
    if (!written.ok()) VT_LOG_ERROR("writing --http_port_file failed: {}", written.message());
  }
  return server;
}

// Ready while the store answers reads and its last write committed.
void AddReadinessChecks(App& app, http::Readiness& readiness) {
  readiness.AddCheck("store", [&app]() -> absl::Status {
    absl::Status read = app.store_gauges().Refresh();
    if (!read.ok()) return absl::UnavailableError("cannot be read");
    if (!app.metrics().last_commit_ok()) return absl::UnavailableError("the last write failed");
    return absl::OkStatus();
  });
}

int Run() {
  if (!SetLogLevel(absl::GetFlag(FLAGS_log_level))) {
    VT_LOG_ERROR("--log_level must be one of debug, info, warn, error, off");
    return 2;
  }
  if (!SetLogFormat(absl::GetFlag(FLAGS_log_format))) {
    VT_LOG_ERROR("--log_format must be text or json");
    return 2;
  }
  // Signals are taken by a sigwait thread, never by handlers inside gRPC.
  const sigset_t signals = BlockStopSignals();

  absl::StatusOr<AppConfig> config = ConfigFromFlags();
  if (!config.ok()) {
    VT_LOG_ERROR("{}", config.status().message());
    return 2;
  }
  absl::StatusOr<Security> secured = SecurityFromFlags();
  if (!secured.ok()) {
    VT_LOG_ERROR("cannot start: {}", secured.status().message());
    return 2;
  }
  const auth::SecurityOptions& security = secured->options;
  config->tokens = security.tokens;
  if (std::string host, listen = absl::GetFlag(FLAGS_http_listen); !listen.empty()) {
    int http_port = 0;
    absl::Status valid = http::SplitHostPort(listen, host, http_port);
    if (!valid.ok()) {
      VT_LOG_ERROR("{}", valid.message());
      return 2;
    }
  }
  SystemClock clock;
  absl::StatusOr<std::unique_ptr<App>> app = App::Create(*config, clock);
  if (!app.ok()) {
    VT_LOG_ERROR("cannot start: {}", app.status().message());
    return 1;
  }
  absl::Status started = (*app)->Start();
  if (!started.ok()) {
    VT_LOG_ERROR("cannot start: {}", started.message());
    return 1;
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  std::string listen = absl::GetFlag(FLAGS_listen);
  LogSecurity(security);
  builder.AddListeningPort(listen, secured->credentials, &port);
  int64_t max_message = std::min<int64_t>(
      INT32_MAX, std::max<int64_t>(int64_t{64} << 20, config->max_image_bytes * 2 + (1 << 20)));
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_message));
  builder.RegisterService(&(*app)->service());
  builder.experimental().SetInterceptorCreators(
      metrics::RpcMetricsInterceptors((*app)->metrics()));
  // The health service is synchronous; short polls let shutdown finish fast.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::CQ_TIMEOUT_MSEC, 200);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    VT_LOG_ERROR("cannot listen on {}", listen);
    return 1;
  }
  http::Readiness readiness;
  AddReadinessChecks(**app, readiness);
  // The dashboard calls the service itself, in process: the same code, and
  // the same rules, as a gRPC caller (its token is checked by the HTTP port).
  std::unique_ptr<dashboard::Dashboard> dashboard;
  if (absl::GetFlag(FLAGS_http_dashboard)) {
    dashboard::DashboardOptions dashboard_options;
    dashboard_options.channel = server->InProcessChannel(grpc::ChannelArguments());
    dashboard_options.store = &(*app)->store();
    dashboard_options.clock = &clock;
    dashboard = std::make_unique<dashboard::Dashboard>(dashboard_options);
  }
  absl::StatusOr<std::unique_ptr<http::HttpServer>> http_server =
      StartHttp(security, **app, readiness, dashboard.get());
  if (!http_server.ok()) {
    VT_LOG_ERROR("cannot start the HTTP port: {}", http_server.status().message());
    server->Shutdown();
    return absl::IsInvalidArgument(http_server.status()) ? 2 : 1;
  }

  constexpr char kServiceName[] = "videotask.v1.VideoTaskService";
  server->GetHealthCheckService()->SetServingStatus(kServiceName, true);
  server->GetHealthCheckService()->SetServingStatus(true);
  VT_LOG_INFO("videotaskd serving on port {} (backends: {}; data dir: {})", port,
              absl::GetFlag(FLAGS_backends).empty() ? "default" : absl::GetFlag(FLAGS_backends),
              config->data_dir);
  if (!absl::GetFlag(FLAGS_port_file).empty()) {
    absl::Status written =
        WriteFileAtomically(absl::GetFlag(FLAGS_port_file), absl::StrCat(port, "\n"));
    if (!written.ok()) VT_LOG_ERROR("writing --port_file failed: {}", written.message());
  }

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    VT_LOG_INFO("signal {}: draining", sig);
    // Not ready first, while both ports still serve: load balancers stop
    // sending before anything is refused.
    readiness.SetDraining();
    server->GetHealthCheckService()->SetServingStatus(kServiceName, false);
    server->GetHealthCheckService()->SetServingStatus(false);
    absl::SleepFor(absl::GetFlag(FLAGS_drain_delay));
    if (dashboard != nullptr) dashboard->Shutdown();  // ends its event streams
    (*app)->BeginDrain();
    server->Shutdown(std::chrono::system_clock::now() +
                     absl::ToChronoSeconds(absl::GetFlag(FLAGS_shutdown_grace)));
    VT_LOG_INFO("gRPC calls finished");
  });
  server->Wait();
  waiter.join();
  (*app)->Stop();
  VT_LOG_INFO("dispatch stopped");
  if (*http_server != nullptr) (*http_server)->Stop();
  app->reset();
  VT_LOG_INFO("stopped; unfinished tasks resume at the next start");
  return 0;
}

}  // namespace
}  // namespace videotask

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "videotaskd: turns still images into short videos.\n"
      "  videotaskd [--listen=127.0.0.1:50051] [--data_dir=./var/videotask] [--backends=a,b]\n"
      "Run with --helpfull for every flag.");
  absl::FlagsUsageConfig usage;
  usage.version_string = [] { return std::string("videotaskd " VIDEOTASK_VERSION "\n"); };
  absl::SetFlagsUsageConfig(usage);
  absl::ParseCommandLine(argc, argv);
  // Many threads, small allocations: keep the heap compact. glibc's own
  // MALLOC_ARENA_MAX, when set, chooses instead.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
  // The lock-order graph behind absl's deadlock detection costs a few
  // percent of the server's CPU on every lock; the tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return videotask::Run();
}
