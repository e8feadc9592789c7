// The dispatcher: claims QUEUED tasks under each backend's slots and rate
// limit, keeps the timers of poll/fetch/cancel steps, hands due work to the
// workers and sleeps until the next thing falls due or it is kicked.
#include "server/engine/engine.h"

#include <algorithm>
#include <utility>

#include "absl/random/distributions.h"
#include "backends/api/errors.h"
#include "common/log.h"
#include "common/thread_name.h"

namespace videotask::engine {
namespace {

// The longest the dispatcher sleeps without a reason, as a safety net.
constexpr absl::Duration kMaxIdleWait = absl::Seconds(1);

}  // namespace

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
  SetThreadName("dispatcher");
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

absl::Time Engine::RunOnce() {
  absl::Time now = clock_.Now();
  bool renew = false;
  bool scan = false;
  std::vector<Timer> due;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::InfiniteFuture();
    LeaseWorkDue(now, renew, scan);
    while (!timers_.empty() && timers_.begin()->first <= now) {
      if (timers_.begin()->second.step == Step::kPoll) {
        poll_pending_.erase(timers_.begin()->second.task_id);
      }
      due.push_back(std::move(timers_.begin()->second));
      timers_.erase(timers_.begin());
    }
  }
  if (renew) RenewLeases(now);
  if (scan) {
    absl::Status scanned = RecoverOrphans();
    if (!scanned.ok()) VT_LOG_WARN("lease takeover scan failed: {}", scanned.ToString());
  }
  for (Timer& timer : due) RunStep(timer.task_id, timer.step);
  RefreshPauses(now);
  RefreshSpend(now);
  absl::Time next = ClaimDue(now);
  const bool retention = options_.retention > absl::ZeroDuration() ||
                         options_.output_retention > absl::ZeroDuration();
  if (retention) MaybeStartRetention(now);

  absl::MutexLock lock(&mu_);
  next = std::min({next, next_lease_renewal_, next_orphan_scan_, next_pause_refresh_});
  if (retention && !retention_running_) next = std::min(next, next_retention_);
  if (!timers_.empty()) next = std::min(next, timers_.begin()->first);
  return next;
}

// ---------------------------------------------------------------------------
// Claims and slots

absl::Time Engine::ClaimDue(absl::Time now) {
  absl::Time next = absl::InfiniteFuture();
  for (const EngineBackend& b : backends_) {
    int want;
    {
      absl::MutexLock lock(&mu_);
      want = ClaimWant(b, now, next);
    }
    if (want > 0) next = std::min(next, ClaimFor(b, want, now));
  }
  return next;
}

int Engine::ClaimWant(const EngineBackend& b, absl::Time now, absl::Time& next) {
  // Paused: nothing is sent; a resume (here or read by RefreshPauses) kicks.
  if (pauses_.count(b.config.name) != 0) return 0;
  BackendState& st = backend_state_.at(b.config.name);
  int free = b.config.max_concurrency - st.in_flight;
  if (free <= 0) return 0;  // a Release kicks the dispatcher
  if (!st.maybe_queued && now < st.next_queued_time) {
    next = std::min(next, st.next_queued_time);
    return 0;
  }
  if (now < st.next_claim) {  // gathering tasks for one claim
    next = std::min(next, st.next_claim);
    return 0;
  }
  if (st.limiter.min_interval() <= absl::ZeroDuration()) return free;
  if (st.limiter.NextFree() > now) {
    next = std::min(next, st.limiter.NextFree());
    return 0;
  }
  return 1;
}

absl::Time Engine::ClaimFor(const EngineBackend& b, int want, absl::Time now) {
  const std::string& name = b.config.name;
  absl::StatusOr<std::vector<Task>> claimed =
      store_.ClaimQueued(name, want, now, options_.owner, now + options_.lease_duration);
  if (!claimed.ok()) {
    VT_LOG_WARN("claiming tasks of {} failed: {}", name, claimed.status().ToString());
    return now + kMaxIdleWait;
  }
  bool short_of_want = static_cast<int>(claimed->size()) < want;
  absl::Time next_queued = absl::InfiniteFuture();
  if (short_of_want) {
    absl::StatusOr<absl::Time> t = store_.NextQueuedTime(name);
    next_queued = t.ok() ? *t : now + kMaxIdleWait;
    // Due but not claimable (leased elsewhere): look again shortly.
    if (next_queued <= now) next_queued = now + kMaxIdleWait;
  }
  absl::Time next;
  {
    absl::MutexLock lock(&mu_);
    BackendState& st = backend_state_.at(name);
    if (short_of_want) {
      st.maybe_queued = false;
      st.next_queued_time = next_queued;
      st.next_claim = now + options_.claim_interval;
      next = next_queued;
    } else {
      next = st.limiter.min_interval() > absl::ZeroDuration() ? now + st.limiter.min_interval()
                                                               : now;
    }
    for (const Task& task : *claimed) {
      NoteSpentLocked(task);
      CallerLeftQueue(task.caller);
      active_[task.id] = name;
      ++st.in_flight;
      st.limiter.TryAcquire(now);
      ++steps_running_;
    }
    queued_estimate_ -= static_cast<int64_t>(claimed->size());
  }
  for (Task& task : *claimed) {
    observer().OnTransition(TaskState::kQueued, task);
    hub_.Publish(task);
    workers_.Schedule([this, task = std::move(task)]() mutable {
      SubmitStep(std::move(task));
      absl::MutexLock lock(&mu_);
      --steps_running_;
    });
  }
  return next;
}

void Engine::NoteQueuedAt(const std::string& backend, absl::Time due, bool requeued) {
  absl::MutexLock lock(&mu_);
  BackendState& st = backend_state_.at(backend);
  // The dispatcher must wake when the retry falls due.
  if (!st.maybe_queued) st.next_queued_time = std::min(st.next_queued_time, due);
  if (requeued) ++queued_estimate_;
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

// ---------------------------------------------------------------------------
// Timers and the poll cadence

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
  // The dispatcher wakes by the earliest timer already (or was kicked when
  // that one was set): only a new earliest one needs a wake-up.
  const bool earliest = timers_.empty() || at < timers_.begin()->first;
  timers_.emplace(at, Timer{task_id, step});
  if (earliest) kicked_ = true;
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

void Engine::RunStep(const std::string& task_id, Step step) {
  {
    absl::MutexLock lock(&mu_);
    ++steps_running_;
  }
  workers_.Schedule([this, task_id, step] {
    if (!Stopping()) {
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

}  // namespace videotask::engine
