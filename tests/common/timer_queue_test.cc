// The timer queue runs callbacks by its injected clock, not the wall clock.
#include "common/timer_queue.h"

#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "common/clock.h"

namespace videotask {
namespace {

TEST(TimerQueueTest, RunsCallbacksByTheInjectedClock) {
  FakeClock clock;
  TimerQueue queue(clock);
  absl::Notification late, now, later;
  absl::Time t0 = clock.Now();
  queue.Schedule(t0 + absl::Hours(1), [&] { late.Notify(); });
  queue.Schedule(t0, [&] { now.Notify(); });
  EXPECT_TRUE(now.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(late.HasBeenNotified());
  // An hour of fake time; the next Schedule wakes the queue, which then
  // finds both timers due.
  clock.Advance(absl::Hours(1));
  queue.Schedule(t0, [&] { later.Notify(); });
  EXPECT_TRUE(later.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(late.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST(TimerQueueTest, CancelledCallbacksDoNotRun) {
  FakeClock clock;
  TimerQueue queue(clock);
  bool ran = false;
  uint64_t id = queue.Schedule(clock.Now() + absl::Seconds(1), [&] { ran = true; });
  EXPECT_TRUE(queue.Cancel(id));
  EXPECT_FALSE(queue.Cancel(id));
  clock.Advance(absl::Seconds(2));
  absl::Notification after;
  queue.Schedule(clock.Now(), [&] { after.Notify(); });
  EXPECT_TRUE(after.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace videotask
