#include "server/engine/engine.h"

#include <algorithm>
#include <utility>

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"
#include "backends/api/errors.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace videotask::engine {
namespace {

using backends::ProviderState;

// The longest the dispatcher sleeps without a reason, as a safety net.
constexpr absl::Duration kMaxIdleWait = absl::Seconds(1);

TaskError ErrorFromStatus(const absl::Status& status, bool retryable) {
  TaskError error;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
      error.code = kErrProviderRejected;
      break;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      error.code = kErrProviderAuth;
      break;
    case absl::StatusCode::kResourceExhausted:
      error.code = kErrRateLimited;
      break;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
      error.code = kErrProviderUnavailable;
      break;
    case absl::StatusCode::kNotFound:
      error.code = kErrProviderNotFound;
      break;
    default:
      error.code = kErrInternal;
      break;
  }
  error.message = std::string(status.message());
  error.retryable = retryable;
  if (std::optional<int> http = backends::HttpStatus(status); http.has_value()) {
    error.provider_code = absl::StrCat("HTTP_", *http);
  }
  return error;
}

}  // namespace

backends::StartRequest MakeStartRequest(const Task& task, std::string image_bytes) {
  backends::StartRequest req;
  req.task_id = task.id;
  req.model = task.spec.model;
  if (task.spec.image.source == ImageSource::kUri) {
    req.image_uri = task.spec.image.uri;
  } else {
    req.image_bytes = std::move(image_bytes);
    req.image_mime_type = task.spec.image.mime_type;
  }
  req.image_filename = task.spec.image.filename;
  req.prompt_text = task.spec.prompt_text;
  req.ratio = task.spec.ratio;
  req.duration_seconds = task.spec.duration_seconds;
  req.seed = task.spec.seed;
  req.public_figure_threshold = task.spec.public_figure_threshold;
  req.labels = task.spec.labels;
  return req;
}

Engine::Engine(EngineOptions options, store::TaskStore& store, std::vector<EngineBackend> backends,
               const Clock& clock, absl::BitGenRef rng, Executor& workers, WatchHub& hub)
    : options_(std::move(options)),
      store_(store),
      backends_(std::move(backends)),
      clock_(clock),
      workers_(workers),
      hub_(hub),
      output_writer_(options_.output_dir, options_.max_output_bytes),
      rng_(rng) {
  for (const EngineBackend& b : backends_) {
    store_.SetBackendLimits(b.config.name, b.config.max_concurrency, b.config.min_submit_interval);
  }
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

// ---------------------------------------------------------------------------
// Lifecycle

absl::Status Engine::Recover() { return Scan(/*initial=*/true); }

absl::Status Engine::RecoverOrphans() { return Scan(/*initial=*/false); }

absl::Status Engine::Scan(bool initial) {
  absl::Time now = clock_.Now();
  VT_ASSIGN_OR_RETURN(std::vector<Task> tasks, store_.ListRecoverable(options_.owner, now));
  int resumed = 0, ambiguous = 0, cancels = 0;
  for (Task& task : tasks) {
    {
      absl::MutexLock lock(&mu_);
      if (active_.contains(task.id)) continue;  // ours, in hand
    }
    if (!initial && task.lease_owner == options_.owner) continue;
    if (task.state == TaskState::kSubmitting) {
      // The create may have reached the provider before the process died.
      TaskError error{kErrSubmissionAmbiguous,
                      "the server stopped while this task was being created at the provider; it "
                      "may exist there, so it is not sent again (check the provider's task list)",
                      false, ""};
      task.lease_owner.clear();
      Fail(std::move(task), std::move(error));
      ++ambiguous;
      continue;
    }
    if (task.state == TaskState::kCancelled) {
      if (initial) {
        ScheduleStep(task.id, Step::kProviderCancel, now);
        ++cancels;
      }
      continue;
    }
    if (FindBackend(task.spec.backend) == nullptr) {
      VT_LOG_WARN("task {} is {} on backend {}, which is not enabled; it waits", task.id,
                  TaskStateName(task.state), task.spec.backend);
      continue;
    }
    task.lease_owner = options_.owner;
    task.lease_expiry = now + options_.lease_duration;
    absl::StatusOr<Task> stored = Commit(std::move(task));
    if (!stored.ok()) continue;  // taken or changed meanwhile
    Track(*stored);
    if (stored->state == TaskState::kDownloading) {
      ScheduleStep(stored->id, Step::kFetch, now);
    } else {
      // The previous holder may have polled it a moment ago.
      ScheduleStep(stored->id, Step::kPoll, now + PollDelay(*FindBackend(stored->spec.backend)));
    }
    ++resumed;
  }
  if (resumed + ambiguous + cancels > 0) {
    VT_LOG_INFO("{}: {} task(s) resumed, {} marked {}, {} provider cancel(s) pending",
                initial ? "recovery" : "lease takeover", resumed,
                ambiguous, kErrSubmissionAmbiguous, cancels);
  }
  return absl::OkStatus();
}

void Engine::Start() {
  // Changes made by other processes sharing the store reach our watchers
  // and may free or fill queue slots.
  store_.SetChangeListener([this](const Task& task) {
    hub_.Publish(task);
    absl::MutexLock lock(&mu_);
    auto it = backend_state_.find(task.spec.backend);
    // A new QUEUED task, or a slot freed by another process, may let us claim.
    if (it != backend_state_.end()) it->second.maybe_queued = true;
    kicked_ = true;
  });
  dispatcher_ = std::thread([this] { DispatcherLoop(); });
}

void Engine::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !dispatcher_.joinable() && steps_running_ == 0) return;
    stopping_ = true;
  }
  if (dispatcher_.joinable()) dispatcher_.join();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* running) { return *running == 0; }, &steps_running_));
}

void Engine::DispatcherLoop() {
  while (true) {
    absl::Time next = RunOnce();
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    absl::Time deadline = std::min(next, clock_.Now() + kMaxIdleWait);
    mu_.AwaitWithDeadline(absl::Condition(
                              +[](Engine* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(e->mu_) {
                                return e->kicked_ || e->stopping_;
                              },
                              this),
                          deadline);
    kicked_ = false;
  }
}

// ---------------------------------------------------------------------------
// Scheduling

absl::Time Engine::RunOnce() {
  absl::Time now = clock_.Now();
  bool renew = false;
  bool scan = false;
  std::vector<Timer> due;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::InfiniteFuture();
    if (now >= next_orphan_scan_) {
      scan = next_orphan_scan_ != absl::InfinitePast();
      next_orphan_scan_ = now + options_.lease_duration / 2;
    }
    if (now >= next_lease_renewal_) {
      renew = next_lease_renewal_ != absl::InfinitePast();
      next_lease_renewal_ = now + options_.lease_duration / 3;
    }
    while (!timers_.empty() && timers_.begin()->first <= now) {
      if (timers_.begin()->second.step == Step::kPoll) {
        poll_pending_.erase(timers_.begin()->second.task_id);
      }
      due.push_back(std::move(timers_.begin()->second));
      timers_.erase(timers_.begin());
    }
  }
  if (renew) {
    absl::Status renewed = store_.RenewLeases(options_.owner, now + options_.lease_duration);
    if (!renewed.ok()) VT_LOG_WARN("lease renewal failed: {}", renewed.ToString());
  }
  if (scan) {
    absl::Status scanned = RecoverOrphans();
    if (!scanned.ok()) VT_LOG_WARN("lease takeover scan failed: {}", scanned.ToString());
  }
  for (Timer& timer : due) RunStep(timer.task_id, timer.step);
  absl::Time next = ClaimDue(now);

  absl::MutexLock lock(&mu_);
  next = std::min({next, next_lease_renewal_, next_orphan_scan_});
  if (!timers_.empty()) next = std::min(next, timers_.begin()->first);
  return next;
}

absl::Time Engine::ClaimDue(absl::Time now) {
  absl::Time next = absl::InfiniteFuture();
  for (const EngineBackend& b : backends_) {
    const std::string& name = b.config.name;
    int want = 0;
    {
      absl::MutexLock lock(&mu_);
      BackendState& st = backend_state_.at(name);
      int free = b.config.max_concurrency - st.in_flight;
      if (free <= 0) continue;  // a Release kicks the dispatcher
      if (!st.maybe_queued && now < st.next_queued_time) {
        next = std::min(next, st.next_queued_time);
        continue;
      }
      if (st.limiter.min_interval() > absl::ZeroDuration()) {
        if (st.limiter.NextFree() > now) {
          next = std::min(next, st.limiter.NextFree());
          continue;
        }
        want = 1;
      } else {
        want = free;
      }
    }
    absl::StatusOr<std::vector<Task>> claimed =
        store_.ClaimQueued(name, want, now, options_.owner, now + options_.lease_duration);
    if (!claimed.ok()) {
      VT_LOG_WARN("claiming tasks of {} failed: {}", name, claimed.status().ToString());
      next = std::min(next, now + kMaxIdleWait);
      continue;
    }
    absl::Time next_queued = absl::InfiniteFuture();
    if (static_cast<int>(claimed->size()) < want) {
      absl::StatusOr<absl::Time> t = store_.NextQueuedTime(name);
      next_queued = t.ok() ? *t : now + kMaxIdleWait;
      // Due but not claimable (leased elsewhere): look again shortly.
      if (next_queued <= now) next_queued = now + kMaxIdleWait;
    }
    {
      absl::MutexLock lock(&mu_);
      BackendState& st = backend_state_.at(name);
      if (static_cast<int>(claimed->size()) < want) {
        st.maybe_queued = false;
        st.next_queued_time = next_queued;
        next = std::min(next, next_queued);
      } else {
        next = std::min(next, st.limiter.min_interval() > absl::ZeroDuration()
                                  ? now + st.limiter.min_interval()
                                  : now);
      }
      for (const Task& task : *claimed) {
        active_[task.id] = name;
        ++st.in_flight;
        st.limiter.TryAcquire(now);
        ++steps_running_;
      }
      queued_estimate_ -= static_cast<int64_t>(claimed->size());
    }
    for (Task& task : *claimed) {
      hub_.Publish(task);
      workers_.Schedule([this, task = std::move(task)]() mutable {
        SubmitStep(std::move(task));
        absl::MutexLock lock(&mu_);
        --steps_running_;
      });
    }
  }
  return next;
}

void Engine::ScheduleStep(const std::string& task_id, Step step, absl::Time at) {
  absl::MutexLock lock(&mu_);
  ScheduleLocked(task_id, step, at);
}

void Engine::ScheduleLocked(const std::string& task_id, Step step, absl::Time at) {
  if (step == Step::kPoll) {
    // One pending poll per task, never sooner than a poll interval after the
    // last one, whichever path asks for it.
    if (!poll_pending_.insert(task_id).second) return;
    at = std::max(at, PollFloorLocked(task_id));
  }
  timers_.emplace(at, Timer{task_id, step});
  kicked_ = true;
}

absl::Time Engine::PollFloorLocked(const std::string& task_id) const {
  auto last = last_poll_.find(task_id);
  if (last == last_poll_.end()) return absl::InfinitePast();
  return last->second.time + last->second.interval;
}

bool Engine::BeginPoll(const std::string& task_id, absl::Duration interval) {
  absl::MutexLock lock(&mu_);
  absl::Time now = clock_.Now();
  absl::Time floor = PollFloorLocked(task_id);
  if (now < floor) {
    ScheduleLocked(task_id, Step::kPoll, floor);
    return false;
  }
  last_poll_[task_id] = LastPoll{now, interval};
  return true;
}

void Engine::RunStep(const std::string& task_id, Step step) {
  {
    absl::MutexLock lock(&mu_);
    ++steps_running_;
  }
  workers_.Schedule([this, task_id, step] {
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      stopping = stopping_;
    }
    if (!stopping) {
      switch (step) {
        case Step::kPoll:
          PollStep(task_id);
          break;
        case Step::kFetch:
          FetchStep(task_id);
          break;
        case Step::kProviderCancel:
          ProviderCancelStep(task_id);
          break;
      }
    }
    absl::MutexLock lock(&mu_);
    --steps_running_;
  });
}

void Engine::Track(const Task& task) {
  absl::MutexLock lock(&mu_);
  if (active_.emplace(task.id, task.spec.backend).second) {
    auto it = backend_state_.find(task.spec.backend);
    if (it != backend_state_.end()) ++it->second.in_flight;
  }
}

void Engine::Release(const std::string& task_id) {
  absl::MutexLock lock(&mu_);
  auto it = active_.find(task_id);
  if (it == active_.end()) return;
  auto st = backend_state_.find(it->second);
  if (st != backend_state_.end()) --st->second.in_flight;
  active_.erase(it);
  last_poll_.erase(task_id);
  kicked_ = true;
}

absl::Duration Engine::PollDelay(const EngineBackend& backend) {
  // Jitter only lengthens the wait: the interval is a floor.
  absl::Duration jitter = backend.config.poll_jitter;
  absl::Duration delay = std::max(backend.config.poll_interval, absl::ZeroDuration());
  if (jitter > absl::ZeroDuration()) {
    absl::MutexLock lock(&mu_);
    delay += absl::Uniform<double>(rng_, 0.0, 1.0) * jitter;
  }
  return delay;
}

absl::Duration Engine::Backoff(int attempt, const absl::Status& error) {
  absl::MutexLock lock(&mu_);
  return options_.retry.Backoff(attempt, backends::RetryAfter(error), rng_);
}

// ---------------------------------------------------------------------------
// Submission and cancel (API side)

void Engine::SubmitAsync(std::vector<store::NewTask> tasks,
                         std::function<void(store::InsertResults)> done) {
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
    }
  }
  store_.InsertAsync(std::move(tasks), [this, done = std::move(done)](store::InsertResults results) {
    {
      absl::MutexLock lock(&mu_);
      for (const auto& r : results) {
        if (!r.ok() || !r->created) continue;
        ++queued_estimate_;
        auto it = backend_state_.find(r->task.spec.backend);
        if (it != backend_state_.end()) it->second.maybe_queued = true;
        kicked_ = true;
      }
    }
    for (const auto& r : results) {
      if (r.ok() && r->created) hub_.Publish(r->task);
    }
    done(std::move(results));
  });
}

absl::StatusOr<Task> Engine::Cancel(const std::string& id) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    VT_ASSIGN_OR_RETURN(Task current, store_.Get(id));
    if (IsTerminal(current.state)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "task ", id, " is already ", TaskStateName(current.state),
          "; only QUEUED, SUBMITTING, RUNNING or DOWNLOADING tasks can be cancelled"));
    }
    Task next = current;
    absl::Time now = clock_.Now();
    next.state = TaskState::kCancelled;
    next.end_time = now;
    next.update_time = now;
    next.error = TaskError{kErrCancelled, "cancelled by a caller", false, ""};
    next.next_attempt_time = absl::InfinitePast();
    // SUBMITTING: the provider id is not known yet; the submit step cancels
    // at the provider once it is.
    next.provider_cancel_pending = current.state != TaskState::kQueued;
    absl::StatusOr<Task> stored = Commit(std::move(next));
    if (stored.status().code() == absl::StatusCode::kAborted) continue;
    if (!stored.ok()) return stored.status();
    if (current.state == TaskState::kRunning || current.state == TaskState::kDownloading) {
      Release(id);
      ScheduleStep(id, Step::kProviderCancel, now);
    } else if (current.state == TaskState::kQueued) {
      absl::MutexLock lock(&mu_);
      --queued_estimate_;
    }
    return stored;
  }
  return absl::AbortedError(absl::StrCat("task ", id, " kept changing; try the cancel again"));
}

std::string Engine::DescribeWait(const Task& task) const {
  if (task.state != TaskState::kQueued) return "";
  absl::Time now = clock_.Now();
  if (task.next_attempt_time > now) {
    return absl::StrCat("retrying after a transient error at ",
                        absl::FormatTime(absl::RFC3339_sec, task.next_attempt_time, absl::UTCTimeZone()));
  }
  const EngineBackend* b = FindBackend(task.spec.backend);
  if (b == nullptr) return absl::StrCat("waiting: backend ", task.spec.backend, " is not enabled here");
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
// Steps

absl::StatusOr<Task> Engine::Commit(Task task) {
  task.update_time = std::max(task.update_time, clock_.Now());
  absl::StatusOr<Task> stored = store_.Update(task);
  if (stored.ok()) {
    hub_.Publish(*stored);
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

absl::StatusOr<backends::StartRequest> Engine::BuildStartRequest(const Task& task) {
  std::string bytes;
  if (task.spec.image.source != ImageSource::kUri) {
    absl::StatusOr<std::string> image = store_.ReadImage(task.image_sha256);
    if (!image.ok()) {
      return absl::InternalError(absl::StrCat("the task's image is gone from the store: ",
                                              image.status().message()));
    }
    bytes = *std::move(image);
  }
  return MakeStartRequest(task, std::move(bytes));
}

void Engine::SubmitStep(Task task) {
  const EngineBackend* b = FindBackend(task.spec.backend);
  bool stopping;
  {
    absl::MutexLock lock(&mu_);
    stopping = stopping_;
  }
  if (stopping || b == nullptr) {
    // Claimed but never sent: back to the queue for the next process.
    task.state = TaskState::kQueued;
    task.attempt_count = std::max(0, task.attempt_count - 1);
    task.lease_owner.clear();
    (void)Commit(std::move(task));
    return;
  }
  absl::StatusOr<backends::StartRequest> request = BuildStartRequest(task);
  if (!request.ok()) {
    Fail(std::move(task), ErrorFromStatus(request.status(), false));
    return;
  }
  absl::StatusOr<std::string> provider_id = b->backend->Start(*request);
  absl::Time now = clock_.Now();
  if (provider_id.ok()) {
    VT_LOG_DEBUG("task {} created at {} as {}", task.id, b->config.name, *provider_id);
    Task next = task;
    next.state = TaskState::kRunning;
    next.provider_task_id = *provider_id;
    next.provider_status = "PENDING";
    next.attempt_count = 0;
    next.error = TaskError();
    next.next_attempt_time = absl::InfinitePast();
    absl::StatusOr<Task> stored = Commit(std::move(next));
    if (stored.ok()) {
      ScheduleStep(task.id, Step::kPoll, now + PollDelay(*b));
      return;
    }
    // Cancelled while we were creating it: record the provider id and cancel
    // it there too.
    for (int i = 0; i < 3; ++i) {
      absl::StatusOr<Task> current = store_.Get(task.id);
      if (!current.ok() || current->state != TaskState::kCancelled) break;
      current->provider_task_id = *provider_id;
      current->provider_cancel_pending = true;
      if (Commit(*std::move(current)).ok()) {
        ScheduleStep(task.id, Step::kProviderCancel, now);
        break;
      }
    }
    if (stored.status().code() != absl::StatusCode::kAborted) {
      VT_LOG_ERROR("task {} was created at {} as {} but could not be recorded", task.id,
                   b->config.name, *provider_id);
    }
    Release(task.id);
    return;
  }

  const absl::Status& error = provider_id.status();
  if (backends::MaybeSent(error)) {
    Fail(std::move(task),
         TaskError{kErrSubmissionAmbiguous,
                   absl::StrCat("the create request may have reached ", b->config.name,
                                " but its answer was lost (", error.message(),
                                "); it is not sent again, so the task is never paid twice (check "
                                "the provider's task list)"),
                   false, ErrorFromStatus(error, false).provider_code});
    return;
  }
  if (options_.retry.ShouldRetry(error, task.attempt_count)) {
    Task next = task;
    next.state = TaskState::kQueued;
    next.error = ErrorFromStatus(error, true);
    next.next_attempt_time = now + Backoff(task.attempt_count, error);
    next.lease_owner.clear();
    absl::Time due = next.next_attempt_time;
    absl::StatusOr<Task> stored = Commit(std::move(next));
    {
      absl::MutexLock lock(&mu_);
      BackendState& st = backend_state_.at(b->config.name);
      // The dispatcher must wake when the retry falls due.
      if (!st.maybe_queued) st.next_queued_time = std::min(st.next_queued_time, due);
      if (stored.ok()) ++queued_estimate_;
    }
    Release(task.id);
    return;
  }
  TaskError failure = ErrorFromStatus(error, false);
  if (backends::IsRetryable(error)) {
    failure.message = absl::StrCat("gave up after ", task.attempt_count, " attempts: ", failure.message);
  }
  Fail(std::move(task), std::move(failure));
}

void Engine::PollStep(const std::string& task_id) {
  absl::StatusOr<Task> current = store_.Get(task_id);
  if (!current.ok()) {
    VT_LOG_WARN("poll of {}: reading the task failed: {}", task_id, current.status().ToString());
    Release(task_id);
    return;
  }
  Task task = *std::move(current);
  if (task.state == TaskState::kDownloading) {
    ScheduleStep(task_id, Step::kFetch, clock_.Now());
    return;
  }
  if (task.state != TaskState::kRunning) {
    if (IsTerminal(task.state)) Release(task_id);
    return;
  }
  const EngineBackend* b = FindBackend(task.spec.backend);
  if (b == nullptr) return;
  if (!BeginPoll(task_id, b->config.poll_interval)) return;  // too soon: put off
  absl::StatusOr<backends::PollResult> polled = b->backend->Poll(task.provider_task_id);
  if (!polled.ok()) {
    RetryOrFail(std::move(task), polled.status(), Step::kPoll);
    return;
  }
  absl::Time now = clock_.Now();
  Task next = task;
  next.provider_status = polled->status_text;
  next.attempt_count = 0;
  next.error = TaskError();
  next.next_attempt_time = absl::InfinitePast();
  switch (polled->state) {
    case ProviderState::kPending:
    case ProviderState::kThrottled:
    case ProviderState::kRunning: {
      next.progress = polled->progress;
      bool changed = next.provider_status != task.provider_status ||
                     next.progress != task.progress || task.attempt_count != 0 ||
                     !task.error.empty();
      if (changed && !Commit(std::move(next)).ok()) {
        OnConflict(task_id);
        return;
      }
      ScheduleStep(task_id, Step::kPoll, now + PollDelay(*b));
      return;
    }
    case ProviderState::kSucceeded:
      next.state = TaskState::kDownloading;
      next.progress = 1;
      next.output_urls = polled->output_urls;
      if (!Commit(std::move(next)).ok()) {
        OnConflict(task_id);
        return;
      }
      ScheduleStep(task_id, Step::kFetch, now);
      return;
    case ProviderState::kFailed:
      Fail(std::move(next), TaskError{kErrProviderFailed,
                                      polled->failure_message.empty()
                                          ? std::string("the provider failed the task")
                                          : polled->failure_message,
                                      polled->failure_retryable, polled->failure_code});
      return;
    case ProviderState::kCancelled:
      next.state = TaskState::kCancelled;
      next.end_time = now;
      next.error = TaskError{kErrCancelled, "cancelled at the provider", false, ""};
      next.lease_owner.clear();
      (void)Commit(std::move(next));
      Release(task_id);
      return;
  }
}

void Engine::FetchStep(const std::string& task_id) {
  absl::StatusOr<Task> current = store_.Get(task_id);
  if (!current.ok()) {
    Release(task_id);
    return;
  }
  Task task = *std::move(current);
  if (task.state != TaskState::kDownloading) {
    if (IsTerminal(task.state)) Release(task_id);
    return;
  }
  const EngineBackend* b = FindBackend(task.spec.backend);
  if (b == nullptr) return;
  absl::StatusOr<std::unique_ptr<OutputFile>> file =
      output_writer_.Begin(task.target_filename_stub, task.id);
  absl::StatusOr<OutputInfo> info = absl::UnknownError("not fetched");
  if (!file.ok()) {
    info = file.status();
  } else if (absl::Status fetched =
                 b->backend->FetchOutput(task.provider_task_id, task.output_urls, **file);
             !fetched.ok()) {
    info = fetched;
  } else {
    info = (*file)->Commit();
  }
  if (!info.ok()) {
    RetryOrFail(std::move(task), info.status(), Step::kFetch);
    return;
  }
  Task next = task;
  next.state = TaskState::kSucceeded;
  next.output_path = info->path;
  next.output_size_bytes = info->size_bytes;
  next.output_sha256 = info->sha256;
  next.progress = 1;
  next.attempt_count = 0;
  next.error = TaskError();
  next.next_attempt_time = absl::InfinitePast();
  next.end_time = clock_.Now();
  next.lease_owner.clear();
  if (!Commit(std::move(next)).ok()) {
    OnConflict(task_id);
    return;
  }
  Release(task_id);
}

void Engine::ProviderCancelStep(const std::string& task_id) {
  absl::StatusOr<Task> current = store_.Get(task_id);
  if (!current.ok() || !current->provider_cancel_pending || current->provider_task_id.empty()) {
    return;
  }
  const EngineBackend* b = FindBackend(current->spec.backend);
  if (b == nullptr) return;
  absl::Status cancelled = b->backend->Cancel(current->provider_task_id);
  if (!cancelled.ok() && cancelled.code() != absl::StatusCode::kNotFound &&
      options_.retry.ShouldRetry(cancelled, current->attempt_count + 1)) {
    Task next = *current;
    ++next.attempt_count;
    absl::Time due = clock_.Now() + Backoff(next.attempt_count, cancelled);
    if (Commit(std::move(next)).ok()) ScheduleStep(task_id, Step::kProviderCancel, due);
    return;
  }
  if (!cancelled.ok() && cancelled.code() != absl::StatusCode::kNotFound) {
    VT_LOG_WARN("cancelling task {} at {} failed: {}", task_id, b->config.name,
                cancelled.ToString());
  }
  Task next = *std::move(current);
  next.provider_cancel_pending = false;
  next.attempt_count = 0;
  (void)Commit(std::move(next));
}

// ---------------------------------------------------------------------------
// Outcomes

void Engine::RetryOrFail(Task task, const absl::Status& error, Step step) {
  int attempts = task.attempt_count + 1;
  if (options_.retry.ShouldRetry(error, attempts)) {
    Task next = task;
    next.attempt_count = attempts;
    next.error = ErrorFromStatus(error, true);
    if (step == Step::kFetch) next.error.code = kErrDownloadFailed;
    absl::Duration delay = Backoff(attempts, error);
    if (step == Step::kPoll) {
      const EngineBackend* b = FindBackend(task.spec.backend);
      if (b != nullptr) delay = std::max(delay, b->config.poll_interval);
    }
    next.next_attempt_time = clock_.Now() + delay;
    absl::Time due = next.next_attempt_time;
    if (!Commit(std::move(next)).ok()) {
      OnConflict(task.id);
      return;
    }
    ScheduleStep(task.id, step, due);
    return;
  }
  TaskError failure = ErrorFromStatus(error, false);
  if (step == Step::kFetch) failure.code = kErrDownloadFailed;
  if (backends::IsRetryable(error)) {
    failure.message = absl::StrCat("gave up after ", attempts, " attempts: ", failure.message);
  }
  Fail(std::move(task), std::move(failure));
}

void Engine::Fail(Task task, TaskError error) {
  std::string id = task.id;
  task.state = TaskState::kFailed;
  task.error = std::move(error);
  task.end_time = clock_.Now();
  task.next_attempt_time = absl::InfinitePast();
  task.lease_owner.clear();
  VT_LOG_INFO("task {} failed: {}: {}", id, task.error.code, task.error.message);
  if (!Commit(std::move(task)).ok()) OnConflict(id);
  Release(id);
}

}  // namespace videotask::engine
