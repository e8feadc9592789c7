// A real videotask server in-process on 127.0.0.1:<free port>, with a real
// SQLite file in a temp dir and the mock backend, plus a real channel and
// stub. Restart() stops it and starts a new one on the same data dir.
#ifndef VIDEOTASK_TESTS_TESTING_SERVER_FIXTURE_H_
#define VIDEOTASK_TESTS_TESTING_SERVER_FIXTURE_H_

#include <map>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "backends/mock/mock_backend.h"
#include "common/clock.h"
#include "server/app.h"
#include "server/store/task_store.h"
#include "tests/testing/temp_dir.h"
#include "videotask/v1/video_task_service.grpc.pb.h"

namespace videotask::testing {

namespace v1 = ::videotask::v1;

// A mock-backend config that dispatches fast (tests).
AppConfig TestConfig(const std::string& data_dir);

// A small, real PNG (a 1x1 RGB pixel) whose bytes differ by `seed`.
std::string TinyPng(int seed = 0);

// A task for the engine or store to take, as the API would pass it on: the
// TinyPng of `seed` as content ("shot.png"), gen4_turbo, 1280:720, 4 s,
// `labels` and `priority`, stub "shot_video", its spec fingerprint set,
// estimated cost $0.04 (the mock's price x 4 s).
store::NewTask MockNewTask(int seed, const std::map<std::string, std::string>& labels = {},
                           const std::string& backend = "mock", int priority = 0);

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Override to change the configuration before each start.
  virtual void Configure(AppConfig& config) {}
  // Override to give the app an HTTP transport (backends that talk HTTP).
  virtual std::unique_ptr<backends::HttpTransport> MakeHttp() { return nullptr; }

  void StartServer();
  void StopServer();
  void Restart() {
    StopServer();
    StartServer();
  }

  backends::MockBackend& mock();
  v1::SubmitTaskRequest PngRequest(const std::string& filename, int seed = 0);
  // Waits (WaitTask) until the task is terminal; fails the test at 30 s.
  v1::Task WaitTerminal(const std::string& id);

  TempDir tmp_;
  SystemClock clock_;
  int port_ = 0;
  std::unique_ptr<App> app_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VideoTaskService::Stub> stub_;
};

}  // namespace videotask::testing

#endif  // VIDEOTASK_TESTS_TESTING_SERVER_FIXTURE_H_
