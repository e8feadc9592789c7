#include "common/timer_queue.h"

#include "common/thread_name.h"

namespace videotask {

TimerQueue::TimerQueue(const Clock& clock) : clock_(clock), thread_([this] { Loop(); }) {}

TimerQueue::~TimerQueue() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

uint64_t TimerQueue::Schedule(absl::Time when, std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  uint64_t id = next_id_++;
  timers_.emplace(when, std::make_pair(id, std::move(fn)));
  when_[id] = when;
  return id;
}

bool TimerQueue::Cancel(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto it = when_.find(id);
  if (it == when_.end()) return false;
  auto range = timers_.equal_range(it->second);
  for (auto t = range.first; t != range.second; ++t) {
    if (t->second.first == id) {
      timers_.erase(t);
      break;
    }
  }
  when_.erase(it);
  return true;
}

void TimerQueue::Loop() {
  SetThreadName("timers");
  while (true) {
    std::function<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      // Wakes for a stop, or when the earliest timer may be due; Schedule
      // of an earlier timer changes timers_, which re-evaluates the wait.
      absl::Time first = timers_.empty() ? absl::InfiniteFuture() : timers_.begin()->first;
      std::pair<TimerQueue*, absl::Time> state(this, first);
      absl::Duration wait = first == absl::InfiniteFuture() ? absl::InfiniteDuration()
                                                            : first - clock_.Now();
      mu_.AwaitWithTimeout(absl::Condition(
                                +[](std::pair<TimerQueue*, absl::Time>* s)
                                     ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                  TimerQueue* q = s->first;
                                  return q->stopping_ ||
                                         (!q->timers_.empty() && q->timers_.begin()->first < s->second);
                                },
                                &state),
                           wait);
      if (stopping_) return;
      if (timers_.empty() || timers_.begin()->first > clock_.Now()) continue;
      auto it = timers_.begin();
      fn = std::move(it->second.second);
      when_.erase(it->second.first);
      timers_.erase(it);
    }
    fn();
  }
}

}  // namespace videotask
