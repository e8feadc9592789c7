#include "server/webhooks/delivery.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"
#include "backends/http/url_policy.h"
#include "common/log.h"
#include "common/thread_name.h"

namespace videotask::webhooks {
namespace {

// Receivers answer briefly; a longer answer is cut (and is no failure).
constexpr int64_t kMaxAnswerBytes = 64 << 10;

bool Retryable(int status) {
  if (status == 0) return true;  // no answer: timeout, refused, reset
  if (status == 408 || status == 429) return true;
  return status < 400 || status >= 500;
}

}  // namespace

store::DeliveryResult NextAfterTry(const store::OutboxMessage& message, int status,
                                   absl::string_view error, absl::Time now, double jitter,
                                   const DeliveryOptions& options) {
  store::DeliveryResult r;
  r.id = message.id;
  r.owner = options.owner;
  r.attempts = message.attempts + 1;
  r.last_status_code = status;
  r.last_error = std::string(error);
  r.next_attempt_time = now;
  if (status >= 200 && status < 300) {
    r.state = store::DeliveryState::kDelivered;
    r.delivered_time = now;
    r.last_error.clear();
    return r;
  }
  if (!Retryable(status)) {
    r.state = store::DeliveryState::kFailed;
    return r;
  }
  const int doublings = std::min(r.attempts - 1, 40);
  absl::Duration delay = std::min(options.retry_initial * std::ldexp(1.0, doublings),
                                  options.retry_max);
  delay = delay * std::clamp(jitter, 0.5, 1.5);
  if (now + delay > message.event_time + options.retry_for) {
    r.state = store::DeliveryState::kFailed;
    absl::StrAppend(&r.last_error, " (gave up after ", r.attempts, " tries)");
    return r;
  }
  r.state = store::DeliveryState::kPending;
  r.next_attempt_time = now + delay;
  return r;
}

WebhookDeliverer::WebhookDeliverer(store::TaskStore& store, backends::HttpTransport& http,
                                   WebhookSigner signer, const Clock& clock, absl::BitGenRef rng,
                                   Executor& pool, DeliveryOptions options,
                                   DeliveryObserver* observer)
    : store_(store),
      http_(http),
      signer_(std::move(signer)),
      clock_(clock),
      pool_(pool),
      options_(std::move(options)),
      observer_(observer),
      rng_(rng) {}

WebhookDeliverer::~WebhookDeliverer() { Stop(); }

absl::StatusOr<int> WebhookDeliverer::RunOnce() {
  int room = 0;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return 0;
    room = options_.max_in_flight - in_flight_;
  }
  if (room <= 0) return 0;
  const absl::Time now = clock_.Now();
  absl::StatusOr<std::vector<store::OutboxMessage>> claimed =
      store_.ClaimOutbox(now, room, options_.owner, now + lease());
  if (!claimed.ok()) return claimed.status();
  int started = 0;
  for (store::OutboxMessage& m : *claimed) {
    std::string host = backends::UrlHost(m.url);
    bool busy = false;
    {
      absl::MutexLock lock(&mu_);
      busy = per_host_[host] >= options_.per_host;
      if (!busy) {
        ++per_host_[host];
        ++in_flight_;
      }
    }
    if (busy) {
      // The host has its share in flight: back to the outbox, not a try.
      store::DeliveryResult later;
      later.id = m.id;
      later.owner = options_.owner;
      later.attempts = m.attempts;
      later.last_status_code = m.last_status_code;
      later.last_error = m.last_error;
      later.next_attempt_time = now + options_.poll_interval;
      Record(later, "");
      continue;
    }
    pool_.Schedule([this, m = std::move(m), host = std::move(host)]() mutable {
      Deliver(std::move(m), std::move(host));
    });
    ++started;
  }
  return started;
}

std::pair<int, std::string> WebhookDeliverer::Send(const store::OutboxMessage& m) {
  backends::HttpRequest request;
  request.method = "POST";
  request.url = m.url;
  request.body = m.payload;
  request.timeout = options_.timeout;
  request.max_response_bytes = kMaxAnswerBytes;
  const int64_t timestamp = absl::ToUnixSeconds(clock_.Now());
  request.headers = {
      {"content-type", "application/json"},
      {"webhook-id", m.id},
      {"webhook-timestamp", absl::StrCat(timestamp)},
      {"webhook-signature", signer_.Sign(m.id, timestamp, m.payload)},
  };
  absl::StatusOr<backends::HttpResponse> answer = http_.Send(request);
  if (!answer.ok()) {
    return {0, std::string(answer.status().message())};
  }
  if (answer->status >= 200 && answer->status < 300) return {answer->status, ""};
  return {answer->status, absl::StrCat("HTTP ", answer->status)};
}

void WebhookDeliverer::Deliver(store::OutboxMessage message, std::string host) {
  auto [status, error] = Send(message);
  const store::DeliveryResult result =
      NextAfterTry(message, status, error, clock_.Now(), Jitter(), options_);
  const char* outcome = result.state == store::DeliveryState::kDelivered ? "delivered"
                        : result.state == store::DeliveryState::kFailed  ? "failed"
                                                                          : "retry";
  if (result.state != store::DeliveryState::kDelivered) {
    VT_LOG_INFO("webhook {} of task {} to {}: {} ({})", message.id, message.task_id,
                backends::RedactUrl(message.url), outcome, result.last_error);
  }
  Record(result, outcome);
  absl::MutexLock lock(&mu_);
  if (--per_host_[host] <= 0) per_host_.erase(host);
  --in_flight_;
}

void WebhookDeliverer::Record(const store::DeliveryResult& result, absl::string_view outcome) {
  absl::Status recorded = store_.FinishDelivery(result);
  if (!recorded.ok()) {
    // Lease lost or store down: the message is tried again after its lease.
    VT_LOG_WARN("webhook {}: recording the try failed: {}", result.id, recorded.message());
  }
  if (observer_ != nullptr && !outcome.empty()) observer_->OnDeliveryTry(outcome);
}

double WebhookDeliverer::Jitter() {
  absl::MutexLock lock(&mu_);
  return absl::Uniform(rng_, 0.8, 1.2);
}

void WebhookDeliverer::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void WebhookDeliverer::Loop() {
  SetThreadName("webhook-deliver");
  while (true) {
    absl::StatusOr<int> started = RunOnce();
    if (!started.ok()) VT_LOG_WARN("webhook outbox claim failed: {}", started.status().message());
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.poll_interval)) return;
  }
}

void WebhookDeliverer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* in_flight) { return *in_flight == 0; }, &in_flight_));
}

}  // namespace videotask::webhooks
