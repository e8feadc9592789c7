// Runs the real videotaskd binary as a child process on a free loopback
// port (--listen=127.0.0.1:0 --port_file=...), for tests of the binary
// itself: flags, health, reflection, signals, restarts.
#ifndef VIDEOTASK_TESTS_TESTING_DAEMON_H_
#define VIDEOTASK_TESTS_TESTING_DAEMON_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace videotask::testing {

class Daemon {
 public:
  // `binary` is the videotaskd path; `work_dir` holds the port file and the
  // log (stdout and stderr).
  Daemon(std::string binary, std::string work_dir);
  ~Daemon();  // SIGKILLs a child still running

  // Starts the child with `args` (plus --listen/--port_file) and waits until
  // it serves. False (with the log in `error`) when it exits or times out.
  bool Start(const std::vector<std::string>& args, std::string* error,
             absl::Duration timeout = absl::Seconds(20));
  // Runs to completion (for flag errors): returns the exit code, -1 on a
  // signal or timeout.
  int RunToExit(const std::vector<std::string>& args, absl::Duration timeout = absl::Seconds(20));
  void Signal(int sig);
  // Waits for the child; its exit code, or -1 when killed by a signal or
  // still running at the timeout.
  int Wait(absl::Duration timeout = absl::Seconds(30));

  int port() const { return port_; }
  // The HTTP port (--http_listen=127.0.0.1:0 unless `args` say otherwise);
  // 0 when it is off.
  int http_port() const { return http_port_; }
  std::string address() const;
  std::string Log() const;  // everything the child printed so far

 private:
  pid_t Spawn(const std::vector<std::string>& args);

  std::string binary_, work_dir_, port_file_, log_path_;
  pid_t pid_ = -1;
  int port_ = 0;
  int http_port_ = 0;
};

}  // namespace videotask::testing

#endif  // VIDEOTASK_TESTS_TESTING_DAEMON_H_
