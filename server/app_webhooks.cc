// The webhook part of the composition root: the policy the store applies in
// each transition, a transport with the rules for caller-given URLs, and the
// delivery workers on their own pool.
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include <google/protobuf/util/json_util.h>

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"
#include "backends/http/curl_transport.h"
#include "backends/http/url_policy.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "server/api/mapping.h"
#include "server/app.h"
#include "server/webhooks/signing.h"

namespace videotask {
namespace {

// The Task as protobuf JSON, printed as the dashboard's JSON API prints it.
std::string TaskJson(const Task& task) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = false;
  if (!google::protobuf::util::MessageToJsonString(api::TaskToProto(task, ""), &out, options)
           .ok()) {
    return "{}";
  }
  return out;
}

}  // namespace

absl::Status App::MakeWebhooks(const Clock& clock) {
  const AppConfig& cfg = config_;
  absl::StatusOr<backends::HostAllowList> parsed =
      backends::HostAllowList::Parse(cfg.webhook_allow_hosts);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--webhook_allow_hosts: ", parsed.status().message()));
  }
  const backends::HostAllowList allow = *std::move(parsed);
  if (cfg.webhook_secret_file.empty()) {
    if (!cfg.webhook_url.empty()) {
      return absl::InvalidArgumentError("--webhook_url needs --webhook_secret_file (webhooks are signed)");
    }
    return absl::OkStatus();
  }
  VT_ASSIGN_OR_RETURN(webhooks::WebhookSigner signer,
                      webhooks::WebhookSigner::FromFile(cfg.webhook_secret_file));
  if (!cfg.webhook_url.empty()) {
    absl::Status allowed = backends::CheckOutboundUrl(cfg.webhook_url, allow);
    if (!allowed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--webhook_url ",
                                                     backends::RedactUrl(cfg.webhook_url),
                                                     " is not allowed: ", allowed.message()));
    }
  }
  if (cfg.webhook_delivery.retry_initial <= absl::ZeroDuration() ||
      cfg.webhook_delivery.timeout <= absl::ZeroDuration() || cfg.webhook_threads < 1 ||
      cfg.webhook_delivery.per_host < 1) {
    return absl::InvalidArgumentError(
        "--webhook_retry_initial and --webhook_timeout must be positive, --webhook_threads and "
        "--webhook_per_host at least 1");
  }
  webhook_policy_ = std::make_unique<webhooks::WebhookPolicy>(cfg.webhook_url, TaskJson,
                                                              webhook_ids_rng_);
  store_->SetOutboxPolicy(webhook_policy_.get());

  backends::CurlOptions options;
  options.clock = &clock;
  options.total_timeout = cfg.webhook_delivery.timeout;
  options.connect_timeout = std::min(cfg.webhook_delivery.timeout, absl::Seconds(5));
  options.max_idle_handles = cfg.webhook_threads;
  options.url_check = [allow](absl::string_view url) {
    return backends::CheckOutboundUrl(url, allow);
  };
  options.address_check = [allow](absl::string_view host, const struct sockaddr* address) {
    return backends::OutboundAddressAllowed(host, address, allow);
  };
  VT_ASSIGN_OR_RETURN(webhook_http_, backends::CurlTransport::Create(std::move(options)));

  webhooks::DeliveryOptions delivery = cfg.webhook_delivery;
  delivery.max_in_flight = cfg.webhook_threads;
  delivery.owner = absl::StrCat("webhooks-", ::getpid(), "-", absl::Uniform<uint32_t>(rng_));
  webhook_pool_ = std::make_unique<ThreadPool>(cfg.webhook_threads, "webhook-worker");
  deliverer_ = std::make_unique<webhooks::WebhookDeliverer>(
      *store_, *webhook_http_, std::move(signer), clock, webhook_jitter_rng_, *webhook_pool_,
      std::move(delivery), metrics_.get());
  VT_LOG_INFO("webhooks: signed; every task's events also to {}; allowed hosts: {}",
              cfg.webhook_url.empty() ? "(no --webhook_url)" : backends::RedactUrl(cfg.webhook_url),
              cfg.webhook_allow_hosts.empty() ? "(none)" : cfg.webhook_allow_hosts);
  return absl::OkStatus();
}

}  // namespace videotask
