// Callers through the real binaries: videotaskd with a token file naming
// callers and --max_queued_per_caller, the videotask CLI submitting with
// each token and listing with --caller.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "tests/testing/daemon.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/temp_dir.h"

namespace videotask {
namespace {

using ::testing::AllOf;
using ::testing::Each;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using json = nlohmann::json;

constexpr char kAliceToken[] = "tok_alice_0123456789abcdef0123";
constexpr char kBobToken[] = "tok_bob_0123456789abcdef012345";
constexpr char kPlainToken[] = "tok_plain_0123456789abcdef0123";

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class CliCallersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteFileAtomically(tmp_.path() + "/tokens",
                                    absl::StrCat("# team tokens\n", kAliceToken, " alice\n",
                                                 kBobToken, "\tbob@example.com\n", kPlainToken,
                                                 "\n"))
                    .ok());
    ASSERT_TRUE(WriteFileAtomically(tmp_.path() + "/img.png", testing::TinyPng(3)).ok());
    std::string error;
    ASSERT_TRUE(daemon_.Start({"--data_dir=" + tmp_.path() + "/data",
                               "--auth_token_file=" + tmp_.path() + "/tokens",
                               "--max_queued_per_caller=2", "--mock_max_concurrency=1"},
                              &error))
        << error;
  }

  CliResult Cli(const std::string& token, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {VT_CLI_PATH, "--server", daemon_.address(), "--token", token};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string out = absl::StrCat(tmp_.path(), "/cli", ++runs_, ".out");
    const std::string err = absl::StrCat(tmp_.path(), "/cli", runs_, ".err");
    pid_t pid = fork();
    if (pid == 0) {
      int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int in_fd = open("/dev/null", O_RDONLY);
      if (out_fd < 0 || err_fd < 0 || in_fd < 0) _exit(127);
      dup2(in_fd, 0);
      dup2(out_fd, 1);
      dup2(err_fd, 2);
      unsetenv("VIDEOTASK_SERVER");
      unsetenv("VIDEOTASK_TOKEN");
      std::vector<char*> cargv;
      for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    CliResult result;
    int status = 0;
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)) {
      result.exit_code = WEXITSTATUS(status);
    }
    result.out = ReadFile(out, 1 << 20).value_or("");
    result.err = ReadFile(err, 1 << 20).value_or("");
    return result;
  }

  // A task that runs for ten minutes at the mock; its id.
  std::string Submit(const std::string& token) {
    CliResult r = Cli(token, {"submit", tmp_.path() + "/img.png", "--prompt", "slow zoom in",
                              "--label", "mock.latency_ms=600000"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }

  json List(const std::string& token, const std::vector<std::string>& filters) {
    std::vector<std::string> args = {"--json", "list", "--all"};
    args.insert(args.end(), filters.begin(), filters.end());
    CliResult r = Cli(token, args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json value = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(value.is_discarded()) << r.out;
    return value.is_discarded() ? json::array() : value["tasks"];
  }

  static std::vector<std::string> Field(const json& tasks, const char* name) {
    std::vector<std::string> out;
    for (const json& t : tasks) out.push_back(t.value(name, ""));
    return out;
  }

  testing::TempDir tmp_;
  testing::Daemon daemon_{VT_VIDEOTASKD_PATH, tmp_.path()};
  int runs_ = 0;
};

TEST_F(CliCallersTest, TasksRecordTheirCallerAndListFiltersByIt) {
  // The one mock slot holds alice's first task.
  std::string running = Submit(kAliceToken);
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline &&
         List(kAliceToken, {"--state", "running"}).size() != 1) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::string alice_queued = Submit(kAliceToken);
  std::string bob = Submit(kBobToken);
  std::string plain = Submit(kPlainToken);

  json alice = List(kBobToken, {"--caller", "alice"});  // any caller may look
  EXPECT_THAT(Field(alice, "id"), ::testing::ElementsAre(alice_queued, running));
  EXPECT_THAT(Field(alice, "caller"), Each(std::string("alice")));
  EXPECT_THAT(Field(List(kAliceToken, {"--caller", "bob@example.com"}), "id"),
              ::testing::ElementsAre(bob));
  json all = List(kAliceToken, {});
  ASSERT_EQ(all.size(), 4u);
  // A token without a name gets a stable derived one.
  const std::string derived = all[0].value("caller", "");
  EXPECT_EQ(all[0].value("id", ""), plain);
  EXPECT_THAT(derived, MatchesRegex("token-[0-9a-f]{8}"));
  EXPECT_THAT(derived, Not(HasSubstr(kPlainToken)));
  EXPECT_THAT(Field(List(kAliceToken, {"--caller", derived}), "id"), ::testing::ElementsAre(plain));
  EXPECT_TRUE(List(kAliceToken, {"--caller", "carol"}).empty());
  EXPECT_THAT(Field(List(kAliceToken, {"--caller", "alice", "--state", "queued"}), "id"),
              ::testing::ElementsAre(alice_queued));

  // The human view names the caller too.
  CliResult get = Cli(kAliceToken, {"get", bob});
  EXPECT_EQ(get.exit_code, 0) << get.err;
  EXPECT_THAT(get.out, HasSubstr("bob@example.com"));

  // A malformed filter is the caller's mistake (exit 2), named.
  CliResult bad = Cli(kAliceToken, {"list", "--caller", "no such caller"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, AllOf(HasSubstr("caller"), HasSubstr("A-Za-z0-9")));
}

TEST_F(CliCallersTest, QueuedLimitPerCallerRefusesPastItAndOthersGoOn) {
  std::string running = Submit(kAliceToken);
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline &&
         List(kAliceToken, {"--state", "running"}).size() != 1) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  Submit(kAliceToken);
  Submit(kAliceToken);
  CliResult refused = Cli(kAliceToken, {"submit", tmp_.path() + "/img.png", "--prompt", "again"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.err, AllOf(HasSubstr("alice"), HasSubstr("max_queued_per_caller=2")));
  EXPECT_THAT(refused.err, Not(HasSubstr(kAliceToken)));
  // bob has his own allowance.
  Submit(kBobToken);
  EXPECT_EQ(List(kBobToken, {"--caller", "alice"}).size(), 3u);
}

}  // namespace
}  // namespace videotask
