// One thread that runs callbacks at given times, for timeouts of many
// waiters (WaitTask) without a thread each. Callbacks must be quick.
#ifndef VIDEOTASK_COMMON_TIMER_QUEUE_H_
#define VIDEOTASK_COMMON_TIMER_QUEUE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace videotask {

class TimerQueue {
 public:
  // `clock` is borrowed and must outlive the queue; the thread waits for
  // the earliest timer by the clock's time (a FakeClock's time only counts
  // when the queue wakes for another reason: a Schedule or a stop).
  explicit TimerQueue(const Clock& clock);
  ~TimerQueue();  // drops pending callbacks without running them
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs `fn` on the timer thread at `when` (by the clock). Returns an id
  // for Cancel.
  uint64_t Schedule(absl::Time when, std::function<void()> fn) ABSL_LOCKS_EXCLUDED(mu_);
  // True when the callback was removed before it started; false when it has
  // run or is running.
  bool Cancel(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  const Clock& clock_;
  absl::Mutex mu_;
  std::multimap<absl::Time, std::pair<uint64_t, std::function<void()>>> timers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, absl::Time> when_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace videotask

#endif  // VIDEOTASK_COMMON_TIMER_QUEUE_H_
