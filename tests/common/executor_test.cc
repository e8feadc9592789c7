// The thread pool starts threads only as concurrent work needs them, never
// more than its bound, and runs everything scheduled before it is gone.
#include "common/executor.h"

#include <pthread.h>

#include <gtest/gtest.h>

#include <atomic>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"

namespace videotask {
namespace {

TEST(ThreadPoolTest, StartsNoThreadBeforeWorkArrives) {
  ThreadPool pool(64);
  EXPECT_EQ(pool.started(), 0);
}

TEST(ThreadPoolTest, StartsOneThreadPerConcurrentCallUpToItsBound) {
  ThreadPool pool(6);
  absl::Notification release;
  absl::BlockingCounter running(4);
  for (int i = 0; i < 4; ++i) {
    pool.Schedule([&] {
      running.DecrementCount();
      release.WaitForNotification();
    });
  }
  running.Wait();  // four calls blocked at once: four threads, no more
  EXPECT_EQ(pool.started(), 4);

  // Ten more blocking calls: two more threads, then they wait in the queue.
  absl::BlockingCounter done(10);
  for (int i = 0; i < 10; ++i) {
    pool.Schedule([&] {
      release.WaitForNotification();
      done.DecrementCount();
    });
  }
  EXPECT_EQ(pool.started(), 6);
  release.Notify();
  done.Wait();  // all ran, on the six
  EXPECT_EQ(pool.started(), 6);
}

TEST(ThreadPoolTest, SequentialWorkReusesIdleThreads) {
  ThreadPool pool(64);
  for (int i = 0; i < 200; ++i) {
    absl::Notification ran;
    pool.Schedule([&] { ran.Notify(); });
    ran.WaitForNotification();
  }
  // A thread that has just finished a call may not be back waiting when
  // the next call comes (preempted on a busy machine), and then another
  // starts; with no reuse all 64 would.
  EXPECT_LE(pool.started(), 16);
}

TEST(ThreadPoolTest, TheDestructorRunsQueuedWorkAndWhatItSchedules) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(2);
    absl::Notification release;
    pool.Schedule([&] { release.WaitForNotification(); });
    for (int i = 0; i < 50; ++i) {
      pool.Schedule([&] {
        ++ran;
        pool.Schedule([&] { ++ran; });
      });
    }
    release.Notify();
  }
  EXPECT_EQ(ran.load(), 100);
}

// Pool threads carry the pool's name, cut to Linux's 15 bytes, so a
// profile sorted by thread (`perf report --sort comm`) names the pool.
TEST(ThreadPoolTest, ItsThreadsCarryThePoolsName) {
  ThreadPool pool(1, "engine-worker-with-a-long-name");
  std::string name;
  absl::Notification ran;
  pool.Schedule([&] {
    char buf[32] = {};
    pthread_getname_np(pthread_self(), buf, sizeof(buf));
    name = buf;
    ran.Notify();
  });
  ran.WaitForNotification();
  EXPECT_EQ(name, "engine-worker-w");
}

}  // namespace
}  // namespace videotask
