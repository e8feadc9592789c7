// Operating the queue with the videotask binary against a real videotaskd
// (mock backend, real SQLite file, free loopback port): pause and resume a
// backend (also across a restart of the server), retry a failed task,
// retry an ambiguous one only when confirmed, adopt a provider task.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "tests/testing/daemon.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/temp_dir.h"

namespace videotask {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(const std::string& path) {
  auto text = ReadFile(path, 64 << 20);
  return text.ok() ? *text : std::string();
}

class CliOpsTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(); }

  void TearDown() override {
    if (HasFailure() && daemon_ != nullptr) std::cerr << "--- videotaskd ---\n" << daemon_->Log();
  }

  void StartServer() {
    daemon_ = std::make_unique<testing::Daemon>(VT_VIDEOTASKD_PATH, tmp_.path());
    std::string error;
    ASSERT_TRUE(daemon_->Start({"--data_dir=" + tmp_.path() + "/data", "--backends=mock",
                                "--mock_ledger=" + Ledger(), "--mock_poll_interval=50ms",
                                "--output_dir=" + tmp_.path() + "/out"},
                               &error))
        << error;
  }

  void RestartServer() {
    daemon_->Signal(SIGTERM);
    EXPECT_EQ(daemon_->Wait(), 0);
    StartServer();
  }

  std::string Ledger() const { return tmp_.path() + "/ledger"; }

  // Every provider task the mock created (one ledger line each).
  int Creates() {
    std::ifstream in(Ledger());
    int lines = 0;
    std::string line;
    while (std::getline(in, line)) lines += line.empty() ? 0 : 1;
    return lines;
  }

  // The provider tasks the mock created for `id`.
  std::vector<std::string> ProviderTasksOf(const std::string& id) {
    std::ifstream in(Ledger());
    std::vector<std::string> out;
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (parts.size() == 2 && parts[0] == id) out.push_back(parts[1]);
    }
    return out;
  }

  CliResult Cli(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {VT_CLI_PATH, "--server", daemon_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out = absl::StrCat(tmp_.path(), "/cli", ++runs_, ".out");
    std::string err = absl::StrCat(tmp_.path(), "/cli", runs_, ".err");
    pid_t pid = fork();
    if (pid == 0) {
      int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (o < 0 || e < 0) _exit(127);
      dup2(o, 1);
      dup2(e, 2);
      unsetenv("VIDEOTASK_SERVER");
      unsetenv("VIDEOTASK_TOKEN");
      std::vector<char*> cargv;
      for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    CliResult result;
    int status = 0;
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)) {
      result.exit_code = WEXITSTATUS(status);
    }
    result.out = ReadAll(out);
    result.err = ReadAll(err);
    return result;
  }

  json Json(const CliResult& r) {
    json value = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(value.is_discarded()) << "not JSON:\n" << r.out << "\n" << r.err;
    return value;
  }

  // Submits one image with labels; returns the task id.
  std::string Submit(const std::vector<std::string>& labels) {
    std::string image = absl::StrCat(tmp_.path(), "/img", ++images_, ".png");
    EXPECT_TRUE(WriteFileAtomically(image, testing::TinyPng(images_)).ok());
    std::vector<std::string> args = {"submit", image, "--prompt", "slow zoom in"};
    for (const std::string& label : labels) {
      args.push_back("--label");
      args.push_back(label);
    }
    CliResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string id = r.out.substr(0, r.out.find('\n'));
    EXPECT_EQ(id.size(), 26u) << r.out;
    return id;
  }

  json GetJson(const std::string& id) { return Json(Cli({"--json", "get", id})); }

  json MockBackend() {
    json backends = Json(Cli({"--json", "backends"}));
    for (const json& b : backends["backends"]) {
      if (b["name"] == "mock") return b;
    }
    ADD_FAILURE() << "no mock backend in " << backends.dump();
    return json();
  }

  testing::TempDir tmp_;
  std::unique_ptr<testing::Daemon> daemon_;
  int runs_ = 0;
  int images_ = 0;
};

TEST_F(CliOpsTest, PauseHoldsQueuedTasksAcrossARestartUntilResume) {
  CliResult paused = Cli({"pause", "mock", "--reason", "provider outage"});
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  EXPECT_THAT(paused.out, HasSubstr("mock paused since "));
  EXPECT_THAT(paused.out, HasSubstr("by anonymous: provider outage"));
  json mock = MockBackend();
  EXPECT_EQ(mock["paused"], true);
  EXPECT_EQ(mock["pause_reason"], "provider outage");
  EXPECT_EQ(mock["paused_by"], "anonymous");
  EXPECT_TRUE(mock["pause_time"].is_string());
  EXPECT_THAT(Cli({"backends"}).out, HasSubstr("paused:              since "));

  std::string id = Submit({});
  absl::SleepFor(absl::Milliseconds(1500));  // 30 poll intervals of the mock
  json task = GetJson(id);
  EXPECT_EQ(task["state"], "QUEUED");
  EXPECT_THAT(task["provider_status"].get<std::string>(),
              HasSubstr("backend mock is paused since"));
  EXPECT_TRUE(ProviderTasksOf(id).empty());

  RestartServer();
  EXPECT_EQ(MockBackend()["paused"], true);
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_EQ(GetJson(id)["state"], "QUEUED");
  EXPECT_TRUE(ProviderTasksOf(id).empty());

  CliResult resumed = Cli({"resume", "mock"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(resumed.out, "mock running\n");
  EXPECT_EQ(MockBackend()["paused"], false);
  CliResult wait = Cli({"--json", "wait", id});
  EXPECT_EQ(wait.exit_code, 0) << wait.out << wait.err;
  EXPECT_EQ(ProviderTasksOf(id).size(), 1u);
}

TEST_F(CliOpsTest, PauseOfAnUnknownBackendOrWithoutOneIsRefused) {
  CliResult unknown = Cli({"pause", "nope"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("\"nope\" is not enabled"));
  EXPECT_THAT(Cli({"resume", "nope"}).err, HasSubstr("enabled: mock"));
  EXPECT_EQ(Cli({"pause"}).exit_code, 2);
  CliResult control = Cli({"pause", "mock", "--reason", "bad\x01reason"});
  EXPECT_EQ(control.exit_code, 2);
  EXPECT_THAT(control.err, HasSubstr("reason"));
  EXPECT_EQ(MockBackend()["paused"], false);
}

TEST_F(CliOpsTest, RetryPutsAFailedTaskBackUnderItsId) {
  std::string id = Submit({"mock.start_errors=1", "mock.start_error=invalid"});
  EXPECT_EQ(Cli({"wait", id}).exit_code, 1);
  CliResult retry = Cli({"retry", id});
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  EXPECT_EQ(retry.out, id + " QUEUED (try 2)\n");
  EXPECT_EQ(Cli({"wait", id}).exit_code, 0);
  json task = GetJson(id);
  EXPECT_EQ(task["state"], "SUCCEEDED");
  ASSERT_EQ(task["attempts"].size(), 2u);
  EXPECT_EQ(task["attempts"][0]["state"], "FAILED");
  EXPECT_EQ(task["attempts"][0]["error"]["code"], "PROVIDER_REJECTED");
  EXPECT_EQ(task["attempts"][1]["state"], "SUCCEEDED");
  EXPECT_THAT(Cli({"get", id}).out, HasSubstr("try 1:            FAILED (PROVIDER_REJECTED"));

  CliResult again = Cli({"retry", id});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_THAT(again.err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(again.err, HasSubstr("SUCCEEDED"));
}

TEST_F(CliOpsTest, AmbiguousTasksAreRetriedOnlyWhenConfirmedOrAdopted) {
  std::string confirmed = Submit({"mock.start_errors=1", "mock.start_error=ambiguous"});
  std::string adopted = Submit({"mock.start_errors=1", "mock.start_error=ambiguous"});
  EXPECT_EQ(Cli({"wait", confirmed, adopted}).exit_code, 1);
  EXPECT_EQ(GetJson(adopted)["error"]["code"], "SUBMISSION_AMBIGUOUS");

  CliResult refused = Cli({"retry", confirmed});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.err, HasSubstr("confirm_possible_duplicate"));
  CliResult yes = Cli({"retry", confirmed, "--confirm-possible-duplicate"});
  ASSERT_EQ(yes.exit_code, 0) << yes.err;
  EXPECT_EQ(Cli({"wait", confirmed}).exit_code, 0);
  EXPECT_EQ(ProviderTasksOf(confirmed).size(), 2u);  // paid twice, as confirmed

  std::vector<std::string> found = ProviderTasksOf(adopted);
  ASSERT_EQ(found.size(), 1u);
  CliResult bad = Cli({"retry", adopted, "--adopt", "has space"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("adopt_provider_task_id"));
  CliResult adopt = Cli({"retry", adopted, "--adopt", found[0]});
  ASSERT_EQ(adopt.exit_code, 0) << adopt.err;
  EXPECT_EQ(adopt.out, absl::StrCat(adopted, " RUNNING ", found[0], " (try 2)\n"));
  CliResult wait = Cli({"--json", "wait", adopted});
  EXPECT_EQ(wait.exit_code, 0) << wait.out;
  json task = GetJson(adopted);
  EXPECT_EQ(task["state"], "SUCCEEDED");
  EXPECT_EQ(task["provider_task_id"], found[0]);
  EXPECT_EQ(task["attempts"][0]["error"]["code"], "SUBMISSION_AMBIGUOUS");
  EXPECT_EQ(ProviderTasksOf(adopted).size(), 1u);  // never created again
  EXPECT_EQ(access(task["output_path"].get<std::string>().c_str(), F_OK), 0);
}

TEST_F(CliOpsTest, ReRunningABatchWithReuseMakesNoProviderCall) {
  // Two folders of the same images under other names: other request ids and
  // stubs, identical work.
  std::vector<std::string> dirs = {tmp_.path() + "/monday", tmp_.path() + "/tuesday"};
  for (const std::string& dir : dirs) {
    ASSERT_TRUE(MakeDirs(dir).ok());
    for (int i = 1; i <= 3; ++i) {
      ASSERT_TRUE(WriteFileAtomically(absl::StrCat(dir, "/", dir.substr(dir.rfind('/') + 1), "_", i,
                                                   ".png"),
                                      testing::TinyPng(i))
                      .ok());
    }
  }
  auto run = [&](const std::string& dir, const std::string& then) {
    return Cli({"--json", "submit-dir", dir, "--prompt", "slow zoom in", "--seed", "42",
                "--reuse", then});
  };
  CliResult first = run(dirs[0], "--wait");
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_EQ(Creates(), 3);

  // Answered SUCCEEDED at once, without waiting.
  CliResult second = run(dirs[1], "--label=run=2");
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_EQ(Creates(), 3) << "the re-run was paid for again";
  json out = Json(second);
  ASSERT_EQ(out["results"].size(), 3u) << second.out;
  for (const json& item : out["results"]) {
    EXPECT_EQ(item["task"]["state"], "SUCCEEDED") << item.dump();
    EXPECT_EQ(item["task"]["reused_from"].get<std::string>().size(), 26u) << item.dump();
  }
  // Without --reuse the same work is sent again.
  std::string image = tmp_.path() + "/single.png";
  ASSERT_TRUE(WriteFileAtomically(image, testing::TinyPng(1)).ok());
  CliResult plain = Cli({"submit", image, "--prompt", "slow zoom in", "--seed", "42", "--wait"});
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(Creates(), 4);
  CliResult reused = Cli({"--json", "submit", image, "--prompt", "slow zoom in", "--seed", "42",
                          "--reuse"});
  ASSERT_EQ(reused.exit_code, 0) << reused.err;
  EXPECT_EQ(Creates(), 4);
}

}  // namespace
}  // namespace videotask
