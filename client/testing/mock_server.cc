#include "videotask/testing/mock_server.h"

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace videotask::testing {
namespace {

using Millis = std::chrono::milliseconds;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Binary(const MockServerOptions& options) {
  const char* env = std::getenv("VIDEOTASKD");
  if (env != nullptr && *env != '\0') return env;
  return options.videotaskd;
}

std::string MakeTempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                        "/videotask-mock-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

void RemoveTree(const std::string& dir) {
  if (dir.empty()) return;
  ::nftw(
      dir.c_str(),
      [](const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }, 16,
      FTW_DEPTH | FTW_PHYS);
}

// Starts `argv` with stdout and stderr appended to `log`; -1 on failure.
pid_t Spawn(std::vector<std::string> argv, const std::string& log) {
  std::vector<char*> args;
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(fd);
  return pid;
}

// Reaps `pid` if it has exited within `timeout`; its wait status, or -1.
int WaitExit(pid_t pid, Millis timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  do {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(Millis(10));
  } while (std::chrono::steady_clock::now() < give_up);
  return -1;
}

void SetLabel(v1::TaskSpec& spec, const std::string& key, const std::string& value) {
  (*spec.mutable_labels())[key] = value;
}

void SetLatency(v1::TaskSpec& spec, Millis latency) {
  if (latency > Millis::zero()) SetLabel(spec, "mock.latency_ms", std::to_string(latency.count()));
}

}  // namespace

std::unique_ptr<MockServer> MockServer::Start(const MockServerOptions& options,
                                              std::string* error) {
  std::string ignored;
  if (error == nullptr) error = &ignored;
  std::unique_ptr<MockServer> server(new MockServer());
  server->data_dir_ = MakeTempDir();
  if (server->data_dir_.empty()) {
    *error = "cannot create a temporary data dir";
    return nullptr;
  }
  const std::string port_file = server->data_dir_ + "/port";
  std::vector<std::string> argv = {Binary(options), "--listen=127.0.0.1:0",
                                   "--port_file=" + port_file, "--data_dir=" + server->data_dir_,
                                   "--backends=mock", "--http_listen="};
  argv.insert(argv.end(), options.flags.begin(), options.flags.end());
  server->pid_ = Spawn(argv, server->data_dir_ + "/videotaskd.log");
  if (server->pid_ < 0) {
    *error = "cannot start " + argv[0];
    return nullptr;
  }
  const auto give_up = std::chrono::steady_clock::now() + options.start_timeout;
  while (server->address_.empty()) {
    std::string port = ReadAll(port_file);
    if (!port.empty() && port.back() == '\n') server->address_ = "127.0.0.1:" + port.substr(0, port.size() - 1);
    if (!server->address_.empty()) break;
    int status = 0;
    if (::waitpid(server->pid_, &status, WNOHANG) == server->pid_) {
      server->pid_ = -1;
      *error = WIFEXITED(status) && WEXITSTATUS(status) == 127
                   ? "cannot run " + argv[0] + " (not found or not executable)"
                   : argv[0] + " exited before serving:\n" + server->log();
      return nullptr;
    }
    if (std::chrono::steady_clock::now() > give_up) {
      *error = argv[0] + " did not serve in time:\n" + server->log();
      return nullptr;
    }
    std::this_thread::sleep_for(Millis(20));
  }
  ClientOptions client_options;
  client_options.target = server->address_;
  server->client_ = Client::Create(client_options, error);
  if (server->client_ == nullptr) return nullptr;
  // Serving: the port file is written after the listener is up. One call
  // proves the service answers.
  v1::ListBackendsResponse backends;
  auto ctx = server->client_->NewContext(options.start_timeout);
  ctx->set_wait_for_ready(true);
  grpc::Status status = server->stub().ListBackends(ctx.get(), v1::ListBackendsRequest(), &backends);
  if (!status.ok()) {
    *error = "videotaskd does not answer: " + status.error_message() + "\n" + server->log();
    return nullptr;
  }
  return server;
}

MockServer::~MockServer() {
  Stop();
  RemoveTree(data_dir_);
}

bool MockServer::Stop() {
  if (pid_ <= 0) return true;
  client_.reset();
  ::kill(pid_, SIGTERM);
  int status = WaitExit(pid_, std::chrono::seconds(10));
  if (status == -1) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return false;
  }
  pid_ = -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string MockServer::log() const { return ReadAll(data_dir_ + "/videotaskd.log"); }

void MockSucceed(v1::TaskSpec& spec, Millis latency) {
  SetLabel(spec, "mock.outcome", "succeed");
  SetLatency(spec, latency);
}

void MockFail(v1::TaskSpec& spec, const std::string& code, Millis latency) {
  SetLabel(spec, "mock.outcome", "fail");
  SetLabel(spec, "mock.failure_code", code);
  SetLatency(spec, latency);
}

void MockThrottleThenSucceed(v1::TaskSpec& spec, Millis latency) {
  SetLabel(spec, "mock.outcome", "throttle_then_succeed");
  SetLatency(spec, latency);
}

void MockStartErrors(v1::TaskSpec& spec, int n, const std::string& kind) {
  SetLabel(spec, "mock.start_errors", std::to_string(n));
  SetLabel(spec, "mock.start_error", kind);
}

std::string TinyPng() {
  // An 8x8 RGB image: signature, IHDR, one IDAT, IEND.
  static const unsigned char kPng[] = {
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d,
      0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x08,
      0x08, 0x02, 0x00, 0x00, 0x00, 0x4b, 0x6d, 0x29, 0xdc, 0x00, 0x00, 0x00,
      0x15, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x60, 0x50, 0x70, 0x48,
      0x68, 0x58, 0x70, 0xe0, 0x01, 0x06, 0x3d, 0xb4, 0x24, 0x00, 0x54, 0xa8,
      0x54, 0x01, 0x71, 0x5f, 0x5c, 0x4a, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
      0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
  };
  return std::string(reinterpret_cast<const char*>(kPng), sizeof(kPng));
}

v1::SubmitTaskRequest MockRequest(const std::string& prompt, const std::string& filename) {
  v1::SubmitTaskRequest request;
  v1::TaskSpec& spec = *request.mutable_spec();
  spec.set_backend("mock");
  spec.set_prompt_text(prompt);
  spec.mutable_image()->set_content(TinyPng());
  spec.mutable_image()->set_filename(filename);
  return request;
}

}  // namespace videotask::testing
