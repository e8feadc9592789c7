// A loopback TCP front for a test server: it forwards every connection to
// the server's port, except that the next N new connections are closed
// before a byte of their request is read (a fault a server behind a load
// balancer can show, and one httplib cannot make itself).
#ifndef VIDEOTASK_TESTS_TESTING_DROPPING_FRONT_H_
#define VIDEOTASK_TESTS_TESTING_DROPPING_FRONT_H_

#include <atomic>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace videotask::testing {

class DroppingFront {
 public:
  DroppingFront() = default;
  ~DroppingFront();
  DroppingFront(const DroppingFront&) = delete;
  DroppingFront& operator=(const DroppingFront&) = delete;

  // Listens on 127.0.0.1:0 and forwards to 127.0.0.1:target_port.
  absl::Status Start(int target_port);
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);  // closes every connection; called by the destructor
  int port() const { return port_; }

  void DropNext(int n) { drop_next_.fetch_add(n); }
  int dropped() const { return dropped_.load(); }

 private:
  void AcceptLoop() ABSL_LOCKS_EXCLUDED(mu_);
  void Pump(int client) const;

  int target_port_ = 0;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> drop_next_{0};
  std::atomic<int> dropped_{0};
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<std::thread> pumps_ ABSL_GUARDED_BY(mu_);
};

}  // namespace videotask::testing

#endif  // VIDEOTASK_TESTS_TESTING_DROPPING_FRONT_H_
