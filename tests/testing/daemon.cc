#include "tests/testing/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace videotask::testing {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Daemon::Daemon(std::string binary, std::string work_dir)
    : binary_(std::move(binary)),
      work_dir_(std::move(work_dir)),
      port_file_(work_dir_ + "/videotaskd.port"),
      log_path_(work_dir_ + "/videotaskd.log") {}

Daemon::~Daemon() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

pid_t Daemon::Spawn(const std::vector<std::string>& args) {
  std::vector<std::string> argv_strings = {binary_};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log);
  return pid;
}

bool Daemon::Start(const std::vector<std::string>& args, std::string* error,
                   absl::Duration timeout) {
  ::unlink(port_file_.c_str());
  const std::string http_port_file = work_dir_ + "/videotaskd.http_port";
  ::unlink(http_port_file.c_str());
  // Flags given later win: `args` may set another --http_listen.
  std::vector<std::string> all = {"--listen=127.0.0.1:0", "--port_file=" + port_file_,
                                  "--http_listen=127.0.0.1:0",
                                  "--http_port_file=" + http_port_file};
  all.insert(all.end(), args.begin(), args.end());
  pid_ = Spawn(all);
  absl::Time give_up = absl::Now() + timeout;
  while (absl::Now() < give_up) {
    std::string text = ReadAll(port_file_);
    int port = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port) && port > 0) {
      port_ = port;
      // Written before the gRPC port file, when the HTTP port is on.
      int http = 0;
      http_port_ = absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadAll(http_port_file)), &http)
                       ? http
                       : 0;
      return true;
    }
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      *error = absl::StrCat("videotaskd exited before serving:\n", Log());
      return false;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  *error = absl::StrCat("videotaskd did not serve within the timeout:\n", Log());
  return false;
}

int Daemon::RunToExit(const std::vector<std::string>& args, absl::Duration timeout) {
  pid_ = Spawn(args);
  return Wait(timeout);
}

void Daemon::Signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int Daemon::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  absl::Time give_up = absl::Now() + timeout;
  while (absl::Now() < give_up) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return -1;
}

std::string Daemon::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::string Daemon::Log() const { return ReadAll(log_path_); }

}  // namespace videotask::testing
