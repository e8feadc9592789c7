// The SQLite file under steady churn: tasks come, end and are deleted by
// retention round after round, and the file stops growing.
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/sha256.h"
#include "server/store/sqlite/sqlite.h"
#include "server/store/sqlite/sqlite_task_store.h"
#include "tests/server/store/store_conformance.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace videotask::store {
namespace {

// The store checkpoints its log every this many pages (SQLite's own default).
constexpr int kCheckpointPages = 1000;

int64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

class SqliteRetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SqliteStoreOptions options;
    options.data_dir = tmp_.path() + "/data";
    options.clock = &clock_;
    options.reader_connections = 2;
    options.inline_blob_max_bytes = 64 * 1024;  // the images stay in the file
    options.wal_size_limit_bytes = 1 << 20;
    options.wal_checkpoint_pages = kCheckpointPages;
    VT_ASSERT_OK_AND_ASSIGN(store_, SqliteTaskStore::Open(options));
  }

  // One round of churn: `n` tasks with their own image, labels and a long
  // prompt are stored, end, and are deleted by retention; free pages go
  // back to the file system.
  void Churn(int round, int n) {
    std::vector<NewTask> batch;
    for (int i = 0; i < n; ++i) {
      Task t = MakeTestTask(absl::StrCat("r", round, "-", i), "", clock_.Now());
      std::string image(8 * 1024, static_cast<char>('a' + (round * 31 + i) % 26));
      absl::StrAppend(&image, round, "-", i);
      t.image_sha256 = Sha256Hex(image);
      t.spec.image.source = ImageSource::kContent;
      t.spec.prompt_text = std::string(1500, 'p');
      t.spec.labels = {{"round", absl::StrCat(round)}, {"item", absl::StrCat(i)}};
      t.spec_fingerprint = SpecFingerprint(t.spec, t.image_sha256);
      batch.push_back(MakeNewTask(t, image));
    }
    std::vector<Task> stored;
    for (auto& r : store_->Insert(std::move(batch))) {
      ASSERT_TRUE(r.ok()) << r.status();
      stored.push_back(r->task);
    }
    // Ended from several threads, so the updates share group commits.
    std::vector<std::thread> threads;
    for (int w = 0; w < 4; ++w) {
      threads.emplace_back([&, w] {
        for (size_t i = static_cast<size_t>(w); i < stored.size(); i += 4) {
          Task t = stored[i];
          t.state = TaskState::kSucceeded;
          t.end_time = clock_.Now();
          EXPECT_THAT(store_->Update(t).status(), ::videotask::testing::IsOk());
        }
      });
    }
    for (std::thread& t : threads) t.join();
    clock_.Advance(absl::Hours(2));
    int deleted = 0;
    while (true) {
      VT_ASSERT_OK_AND_ASSIGN(std::vector<Task> batch_deleted,
                              store_->DeleteEnded(clock_.Now() - absl::Hours(1), 50));
      deleted += static_cast<int>(batch_deleted.size());
      if (batch_deleted.empty()) break;
    }
    EXPECT_EQ(deleted, n);
    VT_ASSERT_OK(store_->ReclaimSpace(1 << 20).status());
  }

  ::videotask::testing::TempDir tmp_;
  FakeClock clock_;
  std::unique_ptr<SqliteTaskStore> store_;
};

TEST_F(SqliteRetentionTest, NewFilesUseIncrementalAutoVacuum) {
  VT_ASSERT_OK_AND_ASSIGN(sqlite::Database db,
                          sqlite::Database::Open(store_->database_path(), SQLITE_OPEN_READONLY));
  VT_ASSERT_OK_AND_ASSIGN(int64_t mode, db.QueryInt64("PRAGMA auto_vacuum"));
  EXPECT_EQ(mode, 2);  // INCREMENTAL
}

TEST_F(SqliteRetentionTest, FileSizePlateausUnderSteadyChurn) {
  constexpr int kRounds = 24;
  constexpr int kTasksPerRound = 300;  // about 3 MB of rows and images a round
  const std::string db = store_->database_path();
  std::vector<int64_t> sizes;
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_NO_FATAL_FAILURE(Churn(round, kTasksPerRound));
    const int64_t wal = FileSize(db + "-wal");
    // What the file holds once the log is folded in (the store does this
    // on its own every kCheckpointPages pages; done here so each round
    // measures the same).
    {
      VT_ASSERT_OK_AND_ASSIGN(sqlite::Database conn,
                              sqlite::Database::Open(db, SQLITE_OPEN_READWRITE));
      VT_ASSERT_OK(conn.ExecScript("PRAGMA wal_checkpoint(TRUNCATE)"));
    }
    sizes.push_back(FileSize(db));
    std::cout << "round " << round << ": db " << sizes.back() << " bytes (wal before the "
              << "checkpoint " << wal << " bytes)\n";
    // The log restarts after each checkpoint: it never holds much more
    // than the checkpoint interval (plus the commit that crossed it).
    EXPECT_LE(wal, int64_t{2} * kCheckpointPages * 4096) << "the write-ahead log kept growing";
  }
  // Each round writes megabytes; a file that kept them would be 24 times
  // the first round's size. Once warm it stays where it was.
  const int64_t warm = *std::max_element(sizes.begin(), sizes.begin() + 4);
  const int64_t later = *std::max_element(sizes.begin() + 4, sizes.end());
  EXPECT_LE(later, warm + warm / 10) << "the file kept growing under churn";
  // And the freed pages went back to the file system: less than a quarter
  // of one round's images is left.
  EXPECT_LT(sizes.back(), int64_t{kTasksPerRound} * 8 * 1024 / 4)
      << "freed pages were not given back (incremental vacuum)";
}

TEST_F(SqliteRetentionTest, SubmitsInterleaveWithARetentionPass) {
  constexpr int kEnded = 20000;
  for (int start = 0; start < kEnded; start += 1000) {
    std::vector<NewTask> batch;
    for (int i = start; i < start + 1000; ++i) {
      Task t = MakeTestTask(absl::StrCat("old", i), "", clock_.Now());
      t.state = TaskState::kSucceeded;
      t.end_time = clock_.Now() - absl::Hours(48);
      t.spec.labels = {{"batch", "old"}};
      batch.push_back(MakeNewTask(t, ""));
    }
    for (const auto& r : store_->Insert(std::move(batch))) ASSERT_TRUE(r.ok()) << r.status();
  }
  // The engine's pass: bounded batches until none is left.
  std::atomic<bool> done{false};
  absl::Duration pass;
  std::thread retention([&] {
    const absl::Time start = absl::Now();
    while (true) {
      absl::StatusOr<std::vector<Task>> deleted =
          store_->DeleteEnded(clock_.Now() - absl::Hours(24), 100);
      if (!deleted.ok() || deleted->empty()) break;
    }
    pass = absl::Now() - start;
    done = true;
  });
  std::vector<absl::Duration> latencies;
  for (int i = 0; !done; ++i) {
    const absl::Time start = absl::Now();
    InsertTaskOk(*store_, MakeTestTask(absl::StrCat("new", i), "", clock_.Now()), "");
    latencies.push_back(absl::Now() - start);
  }
  retention.join();
  ASSERT_GT(latencies.size(), 10u) << "the pass ended before submits could be measured";
  std::sort(latencies.begin(), latencies.end());
  const absl::Duration p50 = latencies[latencies.size() / 2];
  const absl::Duration p99 = latencies[latencies.size() * 99 / 100];
  const absl::Duration worst = latencies.back();
  std::cout << "retention pass over " << kEnded << " tasks: " << pass << "; " << latencies.size()
            << " submits meanwhile: p50 " << p50 << ", p99 " << p99 << ", max " << worst
            << "\n";
  VT_ASSERT_OK_AND_ASSIGN(ListPage left, store_->List(ListQuery()));
  EXPECT_EQ(left.tasks.size(), latencies.size() > 50 ? 50u : latencies.size());
  // One transaction for the whole pass would hold a submit for about all of
  // it; in batches a submit waits for one batch at most.
  EXPECT_LT(worst, pass / 4) << "a submit waited for most of the retention pass";
}

}  // namespace
}  // namespace videotask::store
