// The videotask test kit (CMake target videotask::testing): starts a real
// videotaskd with the deterministic mock backend for another team's tests,
// and scripts what the mock does with each task.
//
//   TEST(MyService, MakesAVideo) {
//     std::string error;
//     auto server = videotask::testing::MockServer::Start({}, &error);
//     ASSERT_NE(server, nullptr) << error;
//     videotask::v1::SubmitTaskRequest request = videotask::testing::MockRequest("zoom in");
//     videotask::testing::MockSucceed(*request.mutable_spec(), std::chrono::milliseconds(200));
//     videotask::v1::Task task;
//     ASSERT_TRUE(server->client().Submit(request, &task).ok());
//     ASSERT_TRUE(server->client().Wait(task.id(), std::chrono::seconds(10), &task).ok());
//     EXPECT_EQ(task.state(), videotask::v1::SUCCEEDED);
//   }
#ifndef VIDEOTASK_TESTING_MOCK_SERVER_H_
#define VIDEOTASK_TESTING_MOCK_SERVER_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "videotask/client.h"
#include "videotask/v1/video_task_service.pb.h"

// The videotaskd that MockServer starts unless told otherwise; the CMake
// package defines it as the videotaskd installed beside it.
#ifndef VIDEOTASK_TESTING_VIDEOTASKD
#define VIDEOTASK_TESTING_VIDEOTASKD "videotaskd"
#endif

namespace videotask::testing {

struct MockServerOptions {
  // The server binary (a bare name is looked up on PATH); $VIDEOTASKD, when
  // set, takes precedence.
  std::string videotaskd = VIDEOTASK_TESTING_VIDEOTASKD;
  // More videotaskd flags, e.g. "--mock_max_concurrency=1".
  std::vector<std::string> flags;
  // How long Start waits for the server to answer.
  std::chrono::milliseconds start_timeout = std::chrono::seconds(20);
};

// One videotaskd child process on a free 127.0.0.1 port with a fresh
// temporary data dir and only the mock backend. Not copyable; the destructor
// stops the server and deletes the data dir.
class MockServer {
 public:
  // Starts the server and waits until it answers calls. nullptr with the
  // reason (and the server's log) in `*error` when it does not.
  static std::unique_ptr<MockServer> Start(const MockServerOptions& options = {},
                                           std::string* error = nullptr);
  ~MockServer();
  MockServer(const MockServer&) = delete;
  MockServer& operator=(const MockServer&) = delete;

  // Closes client() (an idle connection would hold the server's drain for
  // seconds), then SIGTERM and up to 10 s for a clean drain (SIGKILL after
  // that). Called by the destructor; true when the server exited cleanly.
  // client() and stub() are gone afterwards.
  bool Stop();

  const std::string& address() const { return address_; }  // "127.0.0.1:PORT"
  Client& client() { return *client_; }
  v1::VideoTaskService::Stub& stub() { return client_->stub(); }
  const std::string& data_dir() const { return data_dir_; }
  std::string output_dir() const { return data_dir_ + "/outputs"; }
  std::string log() const;  // what the server printed so far

 private:
  MockServer() = default;

  pid_t pid_ = -1;
  std::string data_dir_;
  std::string address_;
  std::unique_ptr<Client> client_;
};

// What the mock does with a task, set as labels on its spec (see the
// README's "Using the mock backend in your own tests").
// Succeeds after `latency` (progress rises meanwhile).
void MockSucceed(v1::TaskSpec& spec,
                 std::chrono::milliseconds latency = std::chrono::milliseconds::zero());
// Fails after `latency` with the provider failure code `code`.
void MockFail(v1::TaskSpec& spec, const std::string& code = "INTERNAL.BAD_OUTPUT.CODE01",
              std::chrono::milliseconds latency = std::chrono::milliseconds::zero());
// Is throttled by the provider first, then succeeds.
void MockThrottleThenSucceed(v1::TaskSpec& spec,
                             std::chrono::milliseconds latency = std::chrono::milliseconds::zero());
// The first `n` creates fail as "unavailable" (retried), "ambiguous" (the
// task fails SUBMISSION_AMBIGUOUS) or "invalid" (a permanent error).
void MockStartErrors(v1::TaskSpec& spec, int n, const std::string& kind = "unavailable");

// A small valid PNG image.
std::string TinyPng();
// A request for the mock backend with TinyPng() inline as `filename` and
// `prompt`; it succeeds at once unless a Mock* call above changes that.
v1::SubmitTaskRequest MockRequest(const std::string& prompt = "slow zoom in",
                                  const std::string& filename = "shot.png");

}  // namespace videotask::testing

#endif  // VIDEOTASK_TESTING_MOCK_SERVER_H_
