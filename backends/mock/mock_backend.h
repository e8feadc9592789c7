// A deterministic in-process stand-in for a video provider, scripted per task
// through labels (see README "The mock backend"):
//   mock.outcome        succeed (default) | fail | throttle_then_succeed
//   mock.latency_ms     time from create to the end, 0..3600000 (default 0)
//   mock.progress_steps polls reporting RUNNING before the end, 0..1000
//   mock.failure_code   provider failure code when failing
//                       (default "INTERNAL.BAD_OUTPUT")
//   mock.start_errors   the first N creates of the task fail, 0..100, with
//   mock.start_error    unavailable (default; safe to retry) | ambiguous
//                       (may have reached the provider) | invalid (400)
//   mock.poll_errors    the first N polls fail transiently, 0..100
//   mock.fetch_errors   the first N output fetches fail transiently, 0..100
// The provider task id encodes outcome and timing, so a task created before a
// restart of the server is followed to the same end after it.
#ifndef VIDEOTASK_BACKENDS_MOCK_MOCK_BACKEND_H_
#define VIDEOTASK_BACKENDS_MOCK_MOCK_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "backends/api/backend.h"
#include "backends/api/registry.h"

namespace videotask::backends {

inline constexpr char kMockName[] = "mock";

// What only this backend knows, from --mock_ledger.
struct MockOptions {
  std::string ledger_path;  // append-only log of provider creates; "" = none
  // The price its model declares (USD per output second), so that daily
  // budgets can be tried against the mock.
  double usd_per_second = 0.01;
};

class MockBackend final : public Backend {
 public:
  // `clock` is borrowed and outlives the backend.
  MockBackend(const BackendConfig& config, const Clock& clock, MockOptions options = {});
  ~MockBackend() override;

  const Capabilities& capabilities() const override { return capabilities_; }
  absl::Status Validate(const StartRequest& request) const override;
  absl::StatusOr<std::string> Start(const StartRequest& request) override;
  absl::StatusOr<PollResult> Poll(absl::string_view provider_task_id) override;
  absl::Status Cancel(absl::string_view provider_task_id) override;
  absl::Status FetchOutput(absl::string_view provider_task_id,
                           const std::vector<std::string>& output_urls,
                           OutputSink& sink) override;

  // Provider tasks created for one of our task ids (successful creates, plus
  // creates that failed "ambiguous", which the provider did receive).
  int CreateCount(absl::string_view task_id) const ABSL_LOCKS_EXCLUDED(mu_);
  int TotalCreates() const ABSL_LOCKS_EXCLUDED(mu_);
  int CancelCount(absl::string_view provider_task_id) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Status RecordCreate(absl::string_view task_id, absl::string_view provider_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock& clock_;
  Capabilities capabilities_;
  int ledger_fd_ = -1;  // append-only create log, or -1

  mutable absl::Mutex mu_;
  int64_t next_serial_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, int> creates_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> start_attempts_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> polls_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> fetches_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> cancels_ ABSL_GUARDED_BY(mu_);
  int total_creates_ ABSL_GUARDED_BY(mu_) = 0;
};

// A setup that builds a MockBackend with `options`.
BackendSetup MockSetup(BackendConfig config, MockOptions options = {});

// "mock": its flags (--mock_*), no secret, always on by default. Defined
// with the flags in mock_descriptor.cc.
BackendDescriptor MockDescriptor();

}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_MOCK_MOCK_BACKEND_H_
