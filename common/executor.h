// Where blocking work runs: a fixed pool in production, inline in tests.
#ifndef VIDEOTASK_COMMON_EXECUTOR_H_
#define VIDEOTASK_COMMON_EXECUTOR_H_

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace videotask {

class Executor {
 public:
  virtual ~Executor() = default;
  // Runs `fn` at some point; never blocks on the work itself.
  virtual void Schedule(std::function<void()> fn) = 0;
};

// Up to `max_threads` threads draining one FIFO queue. A thread starts
// when work is scheduled and no started thread is idle, so a pool sized for
// bursts of blocking calls costs nothing until the bursts come; started
// threads stay. The destructor runs what is queued, then joins. Its
// threads are named `name` (SetThreadName).
class ThreadPool final : public Executor {
 public:
  explicit ThreadPool(int max_threads, std::string name = "pool");
  ~ThreadPool() override;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Schedule(std::function<void()> fn) override ABSL_LOCKS_EXCLUDED(mu_);

  // Threads started so far.
  int started() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Work() ABSL_LOCKS_EXCLUDED(mu_);

  const size_t max_threads_;
  const std::string name_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  size_t idle_ ABSL_GUARDED_BY(mu_) = 0;  // started threads waiting for work
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

// Runs work on the caller's thread, queued so that work scheduled from work
// runs after it (no unbounded recursion). For deterministic tests.
class InlineExecutor final : public Executor {
 public:
  void Schedule(std::function<void()> fn) override;

 private:
  std::deque<std::function<void()>> queue_;
  bool running_ = false;
};

}  // namespace videotask

#endif  // VIDEOTASK_COMMON_EXECUTOR_H_
