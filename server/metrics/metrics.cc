#include "server/metrics/metrics.h"

#include <prometheus/text_serializer.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "backends/api/errors.h"

namespace videotask::metrics {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildHistogram;
using prometheus::Histogram;

constexpr char kOther[] = "other";
using Labels = std::map<std::string, std::string>;

// Seconds from 5 ms to 5 min: gRPC calls, provider calls, commits.
Histogram::BucketBoundaries LatencyBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
}

// Seconds from 5 s to 6 h: submit to terminal state.
Histogram::BucketBoundaries TaskBuckets() {
  return {5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600};
}

constexpr std::array<absl::string_view, kNumRpcCodes> kRpcCodes = {
    "OK",          "CANCELLED",          "UNKNOWN",        "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED", "NOT_FOUND",    "ALREADY_EXISTS", "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL",         "UNAVAILABLE",    "DATA_LOSS",
    "UNAUTHENTICATED"};

int StateIndex(TaskState state) {
  int i = static_cast<int>(state);
  return i > 0 && i < kNumStates ? i : 0;
}

// The last path element of a gRPC method name, when it looks like one.
std::string ShortMethod(absl::string_view method) {
  size_t slash = method.rfind('/');
  absl::string_view name = slash == absl::string_view::npos ? method : method.substr(slash + 1);
  if (name.empty() || name.size() > 64) return kOther;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return kOther;
  }
  return std::string(name);
}

}  // namespace

absl::string_view StateLabel(TaskState state) { return TaskStateName(state); }

absl::string_view OpLabel(engine::ProviderOp op) {
  switch (op) {
    case engine::ProviderOp::kCreate: return "create";
    case engine::ProviderOp::kPoll: return "poll";
    case engine::ProviderOp::kCancel: return "cancel";
    case engine::ProviderOp::kDownload: return "download";
  }
  return "create";
}

std::string ProviderCodeLabel(const absl::Status& status) {
  if (status.ok()) return "ok";
  std::optional<int> http = backends::HttpStatus(status);
  if (http.has_value() && *http >= 100 && *http <= 599) return absl::StrCat(*http);
  return absl::AsciiStrToLower(absl::StatusCodeToString(status.code()));
}

Metrics::Metrics(const std::vector<std::string>& backends)
    : registry_(std::make_shared<prometheus::Registry>()),
      backends_(backends),
      submitted_(BuildCounter()
                     .Name("videotask_tasks_submitted_total")
                     .Help("Tasks stored by submits of this process.")
                     .Register(*registry_)),
      transitions_(BuildCounter()
                       .Name("videotask_task_transitions_total")
                       .Help("State changes committed by this process.")
                       .Register(*registry_)),
      task_duration_(BuildHistogram()
                         .Name("videotask_task_duration_seconds")
                         .Help("Submit to terminal state, of tasks this process ended.")
                         .Register(*registry_)),
      provider_requests_(BuildCounter()
                             .Name("videotask_provider_requests_total")
                             .Help("Calls to providers by op and outcome (HTTP status or error kind).")
                             .Register(*registry_)),
      provider_duration_(BuildHistogram()
                             .Name("videotask_provider_request_duration_seconds")
                             .Help("Duration of calls to providers.")
                             .Register(*registry_)),
      retries_(BuildCounter()
                   .Name("videotask_retries_total")
                   .Help("Failed provider steps scheduled to be tried again.")
                   .Register(*registry_)),
      ambiguous_(BuildCounter()
                     .Name("videotask_ambiguous_creates_total")
                     .Help("Creates that may have reached the provider and are never re-sent.")
                     .Register(*registry_)),
      lease_takeovers_(BuildCounter()
                           .Name("videotask_lease_takeovers_total")
                           .Help("Tasks taken over from processes whose lease expired.")
                           .Register(*registry_)
                           .Add({})),
      commit_duration_(BuildHistogram()
                           .Name("videotask_store_commit_duration_seconds")
                           .Help("Duration of group-commit write transactions.")
                           .Register(*registry_)
                           .Add({}, LatencyBuckets())),
      commit_batch_(BuildHistogram()
                        .Name("videotask_store_commit_batch_size")
                        .Help("Writes (tasks inserted or updated) per group commit.")
                        .Register(*registry_)
                        .Add({}, Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256,
                                                             512, 1024})),
      commit_failures_(BuildCounter()
                           .Name("videotask_store_commit_failures_total")
                           .Help("Group-commit write transactions that did not commit.")
                           .Register(*registry_)
                           .Add({})),
      rpc_requests_(BuildCounter()
                        .Name("videotask_rpc_requests_total")
                        .Help("gRPC calls served, by method and status code.")
                        .Register(*registry_)),
      rpc_duration_(BuildHistogram()
                        .Name("videotask_rpc_duration_seconds")
                        .Help("Duration of gRPC calls (streams: their whole life).")
                        .Register(*registry_)),
      webhook_tries_(BuildCounter()
                         .Name("videotask_webhook_deliveries_total")
                         .Help("Webhook delivery tries, by outcome: delivered (2xx), retry "
                               "(to be tried again), failed (given up).")
                         .Register(*registry_)) {
  webhook_delivered_ = &webhook_tries_.Add({{"outcome", "delivered"}});
  webhook_retry_ = &webhook_tries_.Add({{"outcome", "retry"}});
  webhook_failed_ = &webhook_tries_.Add({{"outcome", "failed"}});
  backends_.push_back(kOther);
  method_names_[kMaxMethods] = kOther;
  for (size_t i = 0; i < backends_.size(); ++i) {
    backend_index_.emplace(backends_[i], i);
    series_.push_back(std::make_unique<BackendSeries>());
  }
}

Metrics::~Metrics() = default;

std::string Metrics::Scrape() {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  {
    absl::MutexLock lock(&extra_mu_);
    for (const auto& c : extra_) {
      std::vector<prometheus::MetricFamily> more = c->Collect();
      families.insert(families.end(), std::make_move_iterator(more.begin()),
                      std::make_move_iterator(more.end()));
    }
  }
  return prometheus::TextSerializer().Serialize(families);
}

void Metrics::Add(std::shared_ptr<prometheus::Collectable> collectable) {
  absl::MutexLock lock(&extra_mu_);
  extra_.push_back(std::move(collectable));
}

size_t Metrics::BackendIndex(absl::string_view backend) const {
  auto it = backend_index_.find(std::string(backend));
  return it != backend_index_.end() ? it->second : backends_.size() - 1;
}

template <typename T, typename MakeLabels>
T& Metrics::Series(std::atomic<T*>& slot, prometheus::Family<T>& family, MakeLabels labels) {
  T* series = slot.load(std::memory_order_acquire);
  if (series != nullptr) return *series;
  absl::MutexLock lock(&create_mu_);
  series = slot.load(std::memory_order_acquire);
  if (series == nullptr) {
    if constexpr (std::is_same_v<T, Histogram>) {
      series =
          &family.Add(labels(), &family == &task_duration_ ? TaskBuckets() : LatencyBuckets());
    } else {
      series = &family.Add(labels());
    }
    slot.store(series, std::memory_order_release);
  }
  return *series;
}

void Metrics::OnSubmitted(absl::string_view backend, int tasks) {
  size_t b = BackendIndex(backend);
  Series(series_[b]->submitted, submitted_, [&] { return Labels{{"backend", backends_[b]}}; }).Increment(tasks);
}

void Metrics::OnTransition(TaskState from, const Task& task) {
  size_t b = BackendIndex(task.spec.backend);
  int f = StateIndex(from), t = StateIndex(task.state);
  BackendSeries& s = *series_[b];
  Series(s.transitions[f][t], transitions_,
         [&] { return Labels{{"backend", backends_[b]},
          {"from", std::string(StateLabel(from))},
          {"to", std::string(StateLabel(task.state))}}; })
      .Increment();
  if (IsTerminal(task.state) && task.create_time != absl::InfinitePast()) {
    absl::Time end = task.end_time != absl::InfinitePast() ? task.end_time : task.update_time;
    Series(s.task_duration[t], task_duration_,
           [&] { return Labels{{"backend", backends_[b]}, {"state", std::string(StateLabel(task.state))}}; })
        .Observe(absl::ToDoubleSeconds(std::max(absl::ZeroDuration(), end - task.create_time)));
  }
}

void Metrics::OnProviderCall(absl::string_view backend, engine::ProviderOp op,
                             const absl::Status& status, absl::Duration elapsed) {
  size_t b = BackendIndex(backend);
  BackendSeries& s = *series_[b];
  const int o = static_cast<int>(op);
  Series(s.provider_duration[o], provider_duration_,
         [&] { return Labels{{"backend", backends_[b]}, {"op", std::string(OpLabel(op))}}; })
      .Observe(absl::ToDoubleSeconds(elapsed));
  std::string code = ProviderCodeLabel(status);
  prometheus::Counter* counter = nullptr;
  {
    absl::MutexLock lock(&s.codes_mu);
    std::string key = absl::StrCat(o, "/", code);
    auto it = s.provider_requests.find(key);
    if (it == s.provider_requests.end()) {
      counter = &provider_requests_.Add(
          {{"backend", backends_[b]}, {"op", std::string(OpLabel(op))}, {"code", code}});
      s.provider_requests.emplace(std::move(key), counter);
    } else {
      counter = it->second;
    }
  }
  counter->Increment();
}

void Metrics::OnRetry(absl::string_view backend, engine::ProviderOp op) {
  size_t b = BackendIndex(backend);
  Series(series_[b]->retries[static_cast<int>(op)], retries_,
         [&] { return Labels{{"backend", backends_[b]}, {"op", std::string(OpLabel(op))}}; })
      .Increment();
}

void Metrics::OnAmbiguousCreate(absl::string_view backend) {
  size_t b = BackendIndex(backend);
  Series(series_[b]->ambiguous, ambiguous_, [&] { return Labels{{"backend", backends_[b]}}; }).Increment();
}

void Metrics::OnLeaseTakeover(int tasks) { lease_takeovers_.Increment(tasks); }

void Metrics::OnDeliveryTry(absl::string_view outcome) {
  if (outcome == "delivered") {
    webhook_delivered_->Increment();
  } else if (outcome == "failed") {
    webhook_failed_->Increment();
  } else {
    webhook_retry_->Increment();
  }
}

void Metrics::OnCommit(absl::Duration elapsed, int writes, bool committed) {
  last_commit_ok_.store(committed, std::memory_order_relaxed);
  if (!committed) {
    commit_failures_.Increment();
    return;
  }
  commit_duration_.Observe(absl::ToDoubleSeconds(elapsed));
  commit_batch_.Observe(writes);
}

int Metrics::MethodIndex(absl::string_view method) {
  std::string key(method);  // short (SSO up to 15 chars does not cover it, one allocation)
  {
    absl::ReaderMutexLock lock(&methods_mu_);
    auto it = methods_.find(key);
    if (it != methods_.end()) return it->second;
  }
  absl::MutexLock lock(&methods_mu_);
  auto it = methods_.find(key);
  if (it != methods_.end()) return it->second;
  int index = static_cast<int>(methods_.size());
  std::string name = ShortMethod(method);
  if (index >= kMaxMethods || name == kOther) return kMaxMethods;
  method_names_[static_cast<size_t>(index)] = std::move(name);  // before the index is published
  methods_.emplace(std::move(key), index);
  return index;
}

void Metrics::OnRpc(absl::string_view method, int code, absl::Duration elapsed) {
  int m = MethodIndex(method);
  const std::string& name = method_names_[static_cast<size_t>(m)];
  int c = code >= 0 && code < kNumRpcCodes ? code : 2;  // UNKNOWN
  MethodSeries& s = method_series_[static_cast<size_t>(m)];
  Series(s.duration, rpc_duration_, [&] { return Labels{{"method", name}}; }).Observe(absl::ToDoubleSeconds(elapsed));
  Series(s.requests[static_cast<size_t>(c)], rpc_requests_,
         [&] { return Labels{{"method", name}, {"code", std::string(kRpcCodes[static_cast<size_t>(c)])}}; })
      .Increment();
}

}  // namespace videotask::metrics
