// The process's metrics: one prometheus-cpp registry and every videotask
// metric family (docs/metrics.md). The rooms report through small
// interfaces implemented here (engine::EngineObserver, store::StoreObserver,
// the RPC interceptor), injected by the composition root; nothing reaches
// for a global. Label values come only from closed sets: the enabled
// backend names, states, ops, gRPC and HTTP codes. Task ids, stubs, labels
// and other caller text never become labels.
//
// Updates are cheap and lock-free on the hot paths: the series a path uses
// are looked up in fixed arrays of atomics (created once, on first use).
#ifndef VIDEOTASK_SERVER_METRICS_METRICS_H_
#define VIDEOTASK_SERVER_METRICS_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <map>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/domain/task.h"
#include "server/engine/engine_observer.h"
#include "server/store/task_store.h"
#include "server/webhooks/delivery.h"

namespace videotask::metrics {

// The closed sets labels are drawn from.
inline constexpr int kNumStates = 8;     // TaskState 1..7, index 0 unused
inline constexpr int kNumOps = 5;        // create, poll, cancel, download, upload
inline constexpr int kNumRpcCodes = 17;  // grpc::StatusCode 0..16
inline constexpr int kMaxMethods = 32;   // gRPC methods served (beyond: "other")

// "QUEUED", ... for a state; "create", ... for an op.
absl::string_view StateLabel(TaskState state);
absl::string_view OpLabel(engine::ProviderOp op);
// The `code` label of a provider call: "ok", the provider's HTTP status
// ("429", "503"; 100..599 only) or the error kind ("unavailable",
// "deadline_exceeded", ...).
std::string ProviderCodeLabel(const absl::Status& status);

class Metrics final : public engine::EngineObserver,
                      public store::StoreObserver,
                      public webhooks::DeliveryObserver {
 public:
  // `backends`: the enabled backend names, the only values of the
  // `backend` label (anything else is reported as "other").
  explicit Metrics(const std::vector<std::string>& backends);
  ~Metrics() override;

  prometheus::Registry& registry() { return *registry_; }
  std::shared_ptr<prometheus::Registry> shared_registry() { return registry_; }
  const std::vector<std::string>& backends() const { return backends_; }

  // The registry (and every collectable added with Add) in Prometheus text
  // format 0.0.4.
  std::string Scrape();
  // Collectables read at scrape time (state gauges, process metrics).
  void Add(std::shared_ptr<prometheus::Collectable> collectable);

  // engine::EngineObserver
  void OnSubmitted(absl::string_view backend, int tasks) override;
  void OnTransition(TaskState from, const Task& task) override;
  void OnProviderCall(absl::string_view backend, engine::ProviderOp op, const absl::Status& status,
                      absl::Duration elapsed) override;
  void OnRetry(absl::string_view backend, engine::ProviderOp op) override;
  void OnAmbiguousCreate(absl::string_view backend) override;
  void OnLeaseTakeover(int tasks) override;

  // store::StoreObserver
  void OnCommit(absl::Duration elapsed, int writes, bool committed) override;
  // False after a write transaction failed, until one commits again.
  bool last_commit_ok() const { return last_commit_ok_.load(std::memory_order_relaxed); }

  // webhooks::DeliveryObserver
  void OnDeliveryTry(absl::string_view outcome) override;

  // One finished gRPC call: `method` is the full name
  // ("/videotask.v1.VideoTaskService/SubmitTask"), `code` a grpc::StatusCode.
  void OnRpc(absl::string_view method, int code, absl::Duration elapsed);

 private:
  // Index of a backend in backends_, or the index of "other".
  size_t BackendIndex(absl::string_view backend) const;
  // The series of `family` with `labels`, created once and cached in `slot`.
  // `labels()` gives the series' labels; called only when creating it.
  template <typename T, typename MakeLabels>
  T& Series(std::atomic<T*>& slot, prometheus::Family<T>& family, MakeLabels labels);
  int MethodIndex(absl::string_view method);

  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<std::string> backends_;  // enabled names, then "other"
  absl::flat_hash_map<std::string, size_t> backend_index_;
  absl::Mutex create_mu_;  // serializes creating series (rare)

  prometheus::Family<prometheus::Counter>& submitted_;
  prometheus::Family<prometheus::Counter>& transitions_;
  prometheus::Family<prometheus::Histogram>& task_duration_;
  prometheus::Family<prometheus::Counter>& provider_requests_;
  prometheus::Family<prometheus::Histogram>& provider_duration_;
  prometheus::Family<prometheus::Counter>& retries_;
  prometheus::Family<prometheus::Counter>& ambiguous_;
  prometheus::Counter& lease_takeovers_;
  prometheus::Histogram& commit_duration_;
  prometheus::Histogram& commit_batch_;
  prometheus::Counter& commit_failures_;
  prometheus::Family<prometheus::Counter>& rpc_requests_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  prometheus::Family<prometheus::Counter>& webhook_tries_;
  prometheus::Counter* webhook_delivered_ = nullptr;
  prometheus::Counter* webhook_retry_ = nullptr;
  prometheus::Counter* webhook_failed_ = nullptr;

  // Per backend (index): fixed-size tables of series pointers.
  struct BackendSeries {
    std::atomic<prometheus::Counter*> submitted{nullptr};
    std::atomic<prometheus::Counter*> ambiguous{nullptr};
    std::array<std::array<std::atomic<prometheus::Counter*>, kNumStates>, kNumStates> transitions{};
    std::array<std::atomic<prometheus::Histogram*>, kNumStates> task_duration{};
    std::array<std::atomic<prometheus::Histogram*>, kNumOps> provider_duration{};
    std::array<std::atomic<prometheus::Counter*>, kNumOps> retries{};
    // Provider codes are an open-ended (but bounded) set: a small map.
    absl::Mutex codes_mu;
    absl::flat_hash_map<std::string, prometheus::Counter*> provider_requests
        ABSL_GUARDED_BY(codes_mu);
  };
  std::vector<std::unique_ptr<BackendSeries>> series_;

  absl::Mutex methods_mu_;
  absl::flat_hash_map<std::string, int> methods_ ABSL_GUARDED_BY(methods_mu_);
  struct MethodSeries {
    std::atomic<prometheus::Histogram*> duration{nullptr};
    std::array<std::atomic<prometheus::Counter*>, kNumRpcCodes> requests{};
  };
  std::array<MethodSeries, kMaxMethods + 1> method_series_;  // last: "other"
  // Written once under methods_mu_ before the index is published.
  std::array<std::string, kMaxMethods + 1> method_names_;

  absl::Mutex extra_mu_;
  std::vector<std::shared_ptr<prometheus::Collectable>> extra_ ABSL_GUARDED_BY(extra_mu_);

  std::atomic<bool> last_commit_ok_{true};
};

}  // namespace videotask::metrics

#endif  // VIDEOTASK_SERVER_METRICS_METRICS_H_
