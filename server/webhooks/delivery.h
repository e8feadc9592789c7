// Delivers the webhook outbox: claims due messages with a lease, POSTs each
// signed try on its own worker pool (never an engine thread), bounded per
// receiver host, and records the outcome: 2xx delivered; 408, 429, 5xx and
// no answer retried with exponential backoff and jitter until `retry_for`
// after the event; any other answer failed.
#ifndef VIDEOTASK_SERVER_WEBHOOKS_DELIVERY_H_
#define VIDEOTASK_SERVER_WEBHOOKS_DELIVERY_H_

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/random/bit_gen_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backends/http/http_transport.h"
#include "common/clock.h"
#include "common/executor.h"
#include "server/store/task_store.h"
#include "server/webhooks/signing.h"

namespace videotask::webhooks {

struct DeliveryOptions {
  // Tries in flight at once (the size of the pool the app gives).
  int max_in_flight = 8;
  // Tries in flight to one receiver host.
  int per_host = 2;
  absl::Duration timeout = absl::Seconds(10);  // one try, connect included
  absl::Duration retry_initial = absl::Seconds(5);
  absl::Duration retry_max = absl::Hours(1);
  // Retries stop this long after the event (at least 24 h in production).
  absl::Duration retry_for = absl::Hours(72);
  absl::Duration poll_interval = absl::Milliseconds(500);
  // Who holds the claimed messages (unique per process).
  std::string owner;
};

// How deliveries end, for metrics; thread-safe.
class DeliveryObserver {
 public:
  virtual ~DeliveryObserver() = default;
  // outcome: "delivered", "retry" or "failed".
  virtual void OnDeliveryTry(absl::string_view outcome) = 0;
};

// What becomes of a message after a try that got `status` (0 = no answer,
// `error` says why) at `now`. `jitter` in [0.8, 1.2] scales the delay.
store::DeliveryResult NextAfterTry(const store::OutboxMessage& message, int status,
                                   absl::string_view error, absl::Time now, double jitter,
                                   const DeliveryOptions& options);

class WebhookDeliverer {
 public:
  // Everything borrowed outlives the deliverer. `pool` runs the tries.
  WebhookDeliverer(store::TaskStore& store, backends::HttpTransport& http, WebhookSigner signer,
                   const Clock& clock, absl::BitGenRef rng, Executor& pool,
                   DeliveryOptions options, DeliveryObserver* observer = nullptr);
  ~WebhookDeliverer();

  // Claims the due messages there is room for and hands each to the pool.
  // Returns how many tries it started.
  absl::StatusOr<int> RunOnce() ABSL_LOCKS_EXCLUDED(mu_);
  // A thread calling RunOnce every poll_interval, until Stop.
  void Start();
  // Stops claiming and waits for the tries in flight.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // The lease of a claim: long enough for one try and its record.
  absl::Duration lease() const { return options_.timeout * 2 + absl::Seconds(5); }

 private:
  void Deliver(store::OutboxMessage message, std::string host) ABSL_LOCKS_EXCLUDED(mu_);
  // One signed POST; its status (0 = none) and error.
  std::pair<int, std::string> Send(const store::OutboxMessage& message);
  void Record(const store::DeliveryResult& result, absl::string_view outcome);
  double Jitter() ABSL_LOCKS_EXCLUDED(mu_);
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  store::TaskStore& store_;
  backends::HttpTransport& http_;
  const WebhookSigner signer_;
  const Clock& clock_;
  Executor& pool_;
  const DeliveryOptions options_;
  DeliveryObserver* const observer_;

  absl::Mutex mu_;
  absl::BitGenRef rng_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int> per_host_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace videotask::webhooks

#endif  // VIDEOTASK_SERVER_WEBHOOKS_DELIVERY_H_
