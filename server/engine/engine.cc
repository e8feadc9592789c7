// The engine's API side (submit, cancel, wait text) and its commits. The
// dispatcher, leases and steps are in dispatcher.cc, leases.cc, steps.cc.
#include "server/engine/engine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/text.h"
#include "server/store/task_store.h"
#include "server/engine/transitions.h"

namespace videotask::engine {

Engine::Engine(EngineOptions options, store::TaskStore& store, std::vector<EngineBackend> backends,
               const Clock& clock, absl::BitGenRef rng, Executor& workers, WatchHub& hub)
    : options_(std::move(options)),
      store_(store),
      backends_(std::move(backends)),
      clock_(clock),
      workers_(workers),
      hub_(hub),
      output_writer_(options_.output_dir, options_.max_output_bytes),
      budgets_(MakeDailyBudgets()),
      rng_(rng) {
  for (const EngineBackend& b : backends_) {
    store_.SetBackendLimits(b.config.name, b.config.max_concurrency, b.config.min_submit_interval);
  }
  if (HasDailyBudgets()) store_.SetDailyBudgets(budgets_);
  absl::MutexLock lock(&mu_);
  for (const EngineBackend& b : backends_) {
    backend_state_.emplace(b.config.name, BackendState(b.config.min_submit_interval));
  }
}

Engine::~Engine() { Stop(); }

const EngineBackend* Engine::FindBackend(absl::string_view name) const {
  for (const EngineBackend& b : backends_) {
    if (b.config.name == name) return &b;
  }
  return nullptr;
}

int Engine::InFlight(absl::string_view backend) const {
  absl::MutexLock lock(&mu_);
  auto it = backend_state_.find(std::string(backend));
  return it == backend_state_.end() ? 0 : it->second.in_flight;
}

bool Engine::Stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

// ---------------------------------------------------------------------------
// Submission and cancel (API side)

void Engine::SubmitAsync(std::vector<store::NewTask> tasks,
                         std::function<void(store::InsertResults)> done) {
  if (absl::Status space = CheckDiskSpace(); !space.ok()) {
    done(store::InsertResults(tasks.size(), space));
    return;
  }
  absl::Time now = clock_.Now();
  bool refresh;
  {
    absl::MutexLock lock(&mu_);
    refresh = now - queued_checked_ > absl::Seconds(1);
  }
  if (refresh) {
    absl::StatusOr<int64_t> queued = store_.CountQueued();
    absl::MutexLock lock(&mu_);
    if (queued.ok()) queued_estimate_ = *queued;
    queued_checked_ = now;
  }
  {
    absl::MutexLock lock(&mu_);
    if (queued_estimate_ + static_cast<int64_t>(tasks.size()) > options_.max_queued_tasks) {
      store::InsertResults full;
      for (size_t i = 0; i < tasks.size(); ++i) {
        full.push_back(absl::ResourceExhaustedError(absl::StrCat(
            "the queue is full (", options_.max_queued_tasks, " tasks waiting); retry later")));
      }
      done(std::move(full));
      return;
    }
    for (store::NewTask& nt : tasks) {
      nt.task.id = NewTaskId(now, rng_);
      nt.task.state = TaskState::kQueued;
      nt.task.create_time = now;
      nt.task.update_time = now;
      nt.task.version = 0;
      if (nt.task.caller.empty()) nt.task.caller = kAnonymousCaller;
    }
  }
  // Per item: past its caller's allowance or not (empty: no per-caller limit).
  std::vector<absl::Status> allowed = ReserveCallerSlots(tasks, now);
  std::vector<size_t> positions;  // stored[i] answers tasks[positions[i]]
  std::vector<std::string> callers;
  std::vector<store::NewTask> stored;
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (!allowed.empty() && !allowed[i].ok()) continue;
    positions.push_back(i);
    callers.push_back(tasks[i].task.caller);
    stored.push_back(std::move(tasks[i]));
  }
  auto inserted = [this, done = std::move(done), allowed = std::move(allowed),
                   positions = std::move(positions),
                   callers = std::move(callers)](store::InsertResults results) {
    {
      absl::MutexLock lock(&mu_);
      if (!allowed.empty()) CallerInserted(callers, results);
      for (const auto& r : results) {
        if (!r.ok() || !r->created) continue;
        ++queued_estimate_;
        auto it = backend_state_.find(r->task.spec.backend);
        if (it == backend_state_.end()) continue;
        it->second.maybe_queued = true;
        // With every slot taken the dispatcher has nothing to claim; the
        // Release that frees one kicks it. Not waking it per submit saves
        // a thread switch on each.
        const EngineBackend* b = FindBackend(r->task.spec.backend);
        if (b != nullptr && it->second.in_flight < b->config.max_concurrency) kicked_ = true;
      }
    }
    for (const auto& r : results) {
      if (!r.ok() || !r->created) continue;
      hub_.Publish(r->task);
      observer().OnSubmitted(r->task.spec.backend, 1);
    }
    if (allowed.empty()) {
      done(std::move(results));
      return;
    }
    store::InsertResults all;
    for (const absl::Status& status : allowed) {
      all.push_back(status.ok() ? absl::InternalError("no insert result") : status);
    }
    for (size_t i = 0; i < results.size(); ++i) all[positions[i]] = std::move(results[i]);
    done(std::move(all));
  };
  if (stored.empty()) {
    inserted(store::InsertResults());
    return;
  }
  store_.InsertAsync(std::move(stored), std::move(inserted));
}

absl::StatusOr<Task> Engine::Cancel(const std::string& id) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    VT_ASSIGN_OR_RETURN(Task current, store_.Get(id));
    if (IsTerminal(current.state)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "task ", id, " is already ", TaskStateName(current.state),
          "; only QUEUED, SUBMITTING, RUNNING or DOWNLOADING tasks can be cancelled"));
    }
    absl::Time now = clock_.Now();
    absl::StatusOr<Task> stored = Commit(OnCancelled(current, now));
    if (stored.status().code() == absl::StatusCode::kAborted) continue;
    if (!stored.ok()) return stored.status();
    if (current.state == TaskState::kRunning || current.state == TaskState::kDownloading) {
      Release(id);
      ScheduleStep(id, Step::kProviderCancel, now);
    } else if (current.state == TaskState::kQueued) {
      absl::MutexLock lock(&mu_);
      --queued_estimate_;
      CallerLeftQueue(current.caller);
    }
    return stored;
  }
  return absl::AbortedError(absl::StrCat("task ", id, " kept changing; try the cancel again"));
}

absl::Status Engine::CheckRetryable(const Task& task, const RetryRequest& request) {
  if (!request.adopt_provider_task_id.empty()) return CheckBackendHere(task.spec.backend);
  {
    absl::MutexLock lock(&mu_);
    if (queued_estimate_ + 1 > options_.max_queued_tasks) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the queue is full (", options_.max_queued_tasks, " tasks waiting); retry later"));
    }
  }
  // Created again: the image must still be stored.
  if (task.spec.image.source == ImageSource::kUri || task.image_sha256.empty() ||
      !IsTerminal(task.state)) {
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> image = store_.ReadImage(task.image_sha256);
  if (absl::IsNotFound(image.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("the image of task ", task.id, " is no longer stored; submit it again"));
  }
  return image.status();
}

absl::StatusOr<Task> Engine::Retry(const std::string& id, RetryRequest request) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    VT_ASSIGN_OR_RETURN(Task current, store_.Get(id));
    absl::Time now = clock_.Now();
    request.owner = options_.owner;
    request.lease_expiry = now + options_.lease_duration;
    VT_ASSIGN_OR_RETURN(Task next, ToRetried(current, request, now));
    VT_RETURN_IF_ERROR(CheckRetryable(current, request));
    absl::StatusOr<Task> stored = Commit(std::move(next));
    if (stored.status().code() == absl::StatusCode::kAborted) continue;
    if (!stored.ok()) return stored.status();
    if (stored->state == TaskState::kRunning) {
      // Adopted: followed here like a task this process created.
      VT_LOG_INFO("task {} follows {} task {}", id, stored->spec.backend,
                  stored->provider_task_id);
      Track(*stored);
      ScheduleStep(id, Step::kPoll, now);
    } else {
      absl::MutexLock lock(&mu_);
      ++queued_estimate_;
      auto it = backend_state_.find(stored->spec.backend);
      if (it != backend_state_.end()) it->second.maybe_queued = true;
      kicked_ = true;
    }
    return stored;
  }
  return absl::AbortedError(absl::StrCat("task ", id, " kept changing; try the retry again"));
}

std::string Engine::DescribeWait(const Task& task) const {
  if (task.state != TaskState::kQueued) return "";
  if (!task.reused_from.empty()) {
    return absl::StrCat("waiting for ", task.reused_from, " (identical)");
  }
  absl::Time now = clock_.Now();
  if (std::optional<store::BackendPause> pause = PauseOf(task.spec.backend); pause.has_value()) {
    return absl::StrCat("backend ", pause->backend, " is paused since ",
                        absl::FormatTime(absl::RFC3339_sec, pause->since, absl::UTCTimeZone()),
                        " by ", pause->caller, pause->reason.empty() ? "" : ": ", pause->reason);
  }
  if (task.next_attempt_time > now) {
    return absl::StrCat("retrying after a transient error at ",
                        absl::FormatTime(absl::RFC3339_sec, task.next_attempt_time, absl::UTCTimeZone()));
  }
  const EngineBackend* b = FindBackend(task.spec.backend);
  if (b == nullptr) return absl::StrCat("waiting: backend ", task.spec.backend, " is not enabled here");
  if (std::string budget = BudgetWait(task, now); !budget.empty()) return budget;
  absl::MutexLock lock(&mu_);
  const BackendState& st = backend_state_.at(b->config.name);
  if (st.in_flight >= b->config.max_concurrency) {
    return absl::StrCat("waiting for a free slot: ", st.in_flight, " of ",
                        b->config.max_concurrency, " running at ", b->config.name);
  }
  if (st.limiter.NextFree() > now) {
    return absl::StrCat("waiting for the minimum interval between creates at ", b->config.name);
  }
  return "waiting to be dispatched";
}

// ---------------------------------------------------------------------------
// Commits

EngineObserver& Engine::observer() const {
  static EngineObserver* const kNone = new EngineObserver();
  return options_.observer != nullptr ? *options_.observer : *kNone;
}

absl::StatusOr<Task> Engine::Commit(Task task) {
  task.update_time = std::max(task.update_time, clock_.Now());
  absl::StatusOr<Task> stored = store_.Update(task);
  if (stored.ok()) {
    if (task.stored_state.has_value() && *task.stored_state != stored->state) {
      observer().OnTransition(*task.stored_state, *stored);
    }
    hub_.Publish(*stored);
    // An identical task's followers wait for this one to end.
    if (!stored->reuse_key.empty() && IsTerminal(stored->state) &&
        !(task.stored_state.has_value() && IsTerminal(*task.stored_state))) {
      ResolveFollowersOf(*stored);
    }
  } else if (stored.status().code() != absl::StatusCode::kAborted) {
    VT_LOG_ERROR("storing task {} ({}) failed: {}", task.id, TaskStateName(task.state),
                 stored.status().ToString());
  }
  return stored;
}

void Engine::OnConflict(const std::string& task_id) {
  absl::StatusOr<Task> current = store_.Get(task_id);
  if (!current.ok() || IsTerminal(current->state)) Release(task_id);
}

}  // namespace videotask::engine
