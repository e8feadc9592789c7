// Disk-full safety on a small real file system: a size-limited tmpfs
// mounted by the test (it runs as root). Without one the test fails and
// says why: it never skips.
#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "tests/testing/server_fixture.h"

namespace videotask::testing {
namespace {

using ::testing::HasSubstr;

// Names in a folder.
std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  return names;
}

class DiskFullTest : public ServerTest {
 protected:
  // Which folder lives on the small file system.
  enum class Small { kData, kOutput };

  void SetUp() override {
    small_ = tmp_.path() + "/small";
    ASSERT_TRUE(MakeDirs(small_).ok());
    if (::mount("tmpfs", small_.c_str(), "tmpfs", 0, "size=8m,mode=0755") != 0) {
      FAIL() << "cannot mount an 8 MiB tmpfs at " << small_ << ": " << std::strerror(errno)
             << ". This test needs a small real file system and root (CAP_SYS_ADMIN) to make "
                "one; it fails rather than skip.";
    }
    mounted_ = true;
    ServerTest::SetUp();
  }

  void TearDown() override {
    ServerTest::TearDown();
    if (mounted_) ::umount2(small_.c_str(), MNT_DETACH);
  }

  void Configure(AppConfig& config) override {
    config.data_dir = which_ == Small::kData ? small_ + "/data" : tmp_.path() + "/data";
    config.output_dir = which_ == Small::kOutput ? small_ + "/out" : tmp_.path() + "/out";
    config.min_free_disk_bytes = min_free_;
    config.disk_wait = absl::Milliseconds(200);
  }

  // Takes every free byte of the small file system.
  void Fill() {
    filler_ = small_ + "/filler";
    int fd = ::open(filler_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    std::string block(64 * 1024, 'x');
    for (size_t size : {block.size(), size_t{4096}, size_t{512}, size_t{1}}) {
      while (::write(fd, block.data(), size) == static_cast<ssize_t>(size)) {
      }
    }
    ::close(fd);
  }
  void Unfill() { ASSERT_EQ(::unlink(filler_.c_str()), 0); }

  grpc::Status Submit(int seed, v1::Task* task,
                      const std::map<std::string, std::string>& labels = {}) {
    grpc::ClientContext ctx;
    v1::SubmitTaskRequest request = PngRequest(absl::StrCat("shot_", seed, ".png"), seed);
    for (const auto& [k, v] : labels) (*request.mutable_spec()->mutable_labels())[k] = v;
    return stub_->SubmitTask(&ctx, request, task);
  }
  grpc::Status Get(const std::string& id, v1::Task* task) {
    grpc::ClientContext ctx;
    v1::GetTaskRequest request;
    request.set_id(id);
    return stub_->GetTask(&ctx, request, task);
  }
  std::string ReadOutput(const std::string& id) {
    grpc::ClientContext ctx;
    v1::ReadTaskOutputRequest request;
    request.set_id(id);
    auto reader = stub_->ReadTaskOutput(&ctx, request);
    std::string bytes;
    v1::OutputChunk chunk;
    while (reader->Read(&chunk)) bytes += chunk.data();
    grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return bytes;
  }

  std::string small_, filler_;
  bool mounted_ = false;
  Small which_ = Small::kData;
  int64_t min_free_ = 0;  // the real ENOSPC, not the guard
};

TEST_F(DiskFullTest, SubmitsAreRefusedUnderMinFreeDiskMeasuredOnTheRealFolder) {
  min_free_ = int64_t{64} << 20;  // more than the whole 8 MiB file system
  Restart();
  v1::Task task;
  grpc::Status status = Submit(1, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("data folder"));
  EXPECT_THAT(status.error_message(), HasSubstr("64.0 MiB required"));
  EXPECT_THAT(status.error_message(), HasSubstr("--min_free_disk"));
  min_free_ = 1 << 20;
  Restart();
  EXPECT_TRUE(Submit(2, &task).ok());
}

TEST_F(DiskFullTest, AFullDatabaseDiskFailsSubmitsCleanlyAndDamagesNothing) {
  std::vector<std::string> acknowledged;
  std::map<std::string, std::string> outputs;
  for (int i = 0; i < 3; ++i) {
    v1::Task task;
    ASSERT_TRUE(Submit(i, &task).ok());
    acknowledged.push_back(task.id());
    ASSERT_EQ(WaitTerminal(task.id()).state(), v1::SUCCEEDED);
    outputs[task.id()] = ReadOutput(task.id());
    ASSERT_FALSE(outputs[task.id()].empty());
  }
  ASSERT_NO_FATAL_FAILURE(Fill());

  // Submits fail once SQLite finds no room (SQLITE_FULL); the ones
  // acknowledged before that are durable.
  grpc::Status refused;
  for (int seed = 100; seed < 1100 && refused.ok(); ++seed) {
    v1::Task task;
    refused = Submit(seed, &task);
    if (refused.ok()) acknowledged.push_back(task.id());
  }
  ASSERT_FALSE(refused.ok()) << "1000 submits fitted into a full file system";
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  std::cout << "first refused submit: " << refused.error_message() << "\n";

  // The server is up and everything stored before is intact.
  for (const auto& [id, bytes] : outputs) {
    v1::Task task;
    ASSERT_TRUE(Get(id, &task).ok());
    EXPECT_EQ(task.state(), v1::SUCCEEDED);
    EXPECT_EQ(ReadOutput(id), bytes);
  }

  // Space comes back: submits work again without a restart.
  ASSERT_NO_FATAL_FAILURE(Unfill());
  v1::Task after;
  grpc::Status ok = Submit(5000, &after);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  acknowledged.push_back(after.id());
  EXPECT_EQ(WaitTerminal(after.id()).state(), v1::SUCCEEDED);

  // After a restart the file is sound and every acknowledged task is there.
  Restart();
  for (const std::string& id : acknowledged) {
    v1::Task task;
    EXPECT_TRUE(Get(id, &task).ok()) << id;
  }
  StopServer();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2((small_ + "/data/videotask.db").c_str(), &db, SQLITE_OPEN_READONLY,
                            nullptr),
            SQLITE_OK);
  sqlite3_stmt* check = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &check, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(check), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(check, 0)), "ok");
  sqlite3_finalize(check);
  sqlite3_close(db);
}

TEST_F(DiskFullTest, AFullOutputDiskMakesDownloadsWaitAndLeavesNoTempFile) {
  which_ = Small::kOutput;
  Restart();
  ASSERT_NO_FATAL_FAILURE(Fill());
  v1::Task task;
  ASSERT_TRUE(Submit(7, &task).ok());
  // The download hits ENOSPC and waits; it is not failed for it.
  v1::Task waiting;
  absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (absl::Now() < give_up) {
    ASSERT_TRUE(Get(task.id(), &waiting).ok());
    if (waiting.error().code() == "DISK_FULL") break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(waiting.error().code(), "DISK_FULL") << waiting.DebugString();
  EXPECT_EQ(waiting.state(), v1::DOWNLOADING);
  EXPECT_TRUE(waiting.error().retryable());
  EXPECT_THAT(waiting.error().message(), HasSubstr("No space left on device"));
  absl::SleepFor(absl::Seconds(1));  // several more tries, still waiting
  ASSERT_TRUE(Get(task.id(), &waiting).ok());
  EXPECT_EQ(waiting.state(), v1::DOWNLOADING);
  for (const std::string& name : List(small_ + "/out")) {
    EXPECT_FALSE(absl::EndsWith(name, ".part")) << "temp file left behind: " << name;
  }

  ASSERT_NO_FATAL_FAILURE(Unfill());
  v1::Task done = WaitTerminal(task.id());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.DebugString();
  EXPECT_EQ(static_cast<int64_t>(ReadOutput(task.id()).size()), done.output_size_bytes());
}

}  // namespace
}  // namespace videotask::testing
