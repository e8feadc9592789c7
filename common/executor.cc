#include "common/executor.h"

#include <algorithm>
#include <system_error>
#include <utility>

#include "common/thread_name.h"

namespace videotask {

ThreadPool::ThreadPool(int max_threads, std::string name)
    : max_threads_(static_cast<size_t>(std::max(max_threads, 1))), name_(std::move(name)) {}

ThreadPool::~ThreadPool() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    // No thread starts once stopping (Schedule): work scheduled by work
    // while draining runs on the threads already started.
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
}

void ThreadPool::Schedule(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(fn));
  // Every idle thread will take one queued item; start another for the
  // rest. While stopping, the draining threads take it.
  if (stopping_ || queue_.size() <= idle_ || threads_.size() >= max_threads_) return;
  ++idle_;  // counted idle from now: it takes work as soon as it runs
  try {
    threads_.emplace_back([this] { Work(); });
  } catch (const std::system_error&) {
    // Out of threads (a process limit): the started ones take the work.
    --idle_;
    if (threads_.empty()) throw;
  }
}

int ThreadPool::started() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(threads_.size());
}

void ThreadPool::Work() {
  SetThreadName(name_);
  for (bool counted = true;; counted = false) {  // Schedule counted it idle
    std::function<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      if (!counted) ++idle_;
      mu_.Await(absl::Condition(
          +[](ThreadPool* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stopping_ || !self->queue_.empty();
          },
          this));
      --idle_;
      if (queue_.empty()) return;  // stopping and drained
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    fn();
  }
}

void InlineExecutor::Schedule(std::function<void()> fn) {
  queue_.push_back(std::move(fn));
  if (running_) return;
  running_ = true;
  while (!queue_.empty()) {
    std::function<void()> next = std::move(queue_.front());
    queue_.pop_front();
    next();
  }
  running_ = false;
}

}  // namespace videotask
