// One conformance suite for every TaskStore: the tests in
// store_conformance.cc run against each store through a StoreHarness, and
// each store's test file instantiates them:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, TaskStoreConformanceTest,
//                            ::testing::Values(StoreParam{"Sqlite", factory}),
//                            StoreParamName);
#ifndef VIDEOTASK_TESTS_SERVER_STORE_STORE_CONFORMANCE_H_
#define VIDEOTASK_TESTS_SERVER_STORE_STORE_CONFORMANCE_H_

#include <functional>
#include <ostream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "server/domain/task.h"
#include "server/store/task_store.h"

namespace videotask::store {

// Images up to this size are "small" (SQLite keeps them inline).
inline constexpr int64_t kConformanceInlineMax = 1024;

// Fresh, empty storage for one test; Open may be called again to reopen it.
class StoreHarness {
 public:
  virtual ~StoreHarness() = default;
  // Opens a store on this harness's storage (the previous one must be
  // closed first when the store is exclusive).
  virtual absl::StatusOr<std::unique_ptr<TaskStore>> Open(const Clock* clock) = 0;
  // True when opening a store releases every lease (an exclusive,
  // single-process store); false for a store shared by replicas.
  virtual bool ReleasesLeasesOnOpen() const = 0;
  // True while the store keeps the image `sha256` outside its database
  // (e.g. a file); such copies must go when the image is deleted.
  virtual bool HasBlobOutsideDatabase(const std::string& sha256) const = 0;
};

struct StoreParam {
  std::string name;
  std::function<std::unique_ptr<StoreHarness>()> make;
};

// Test names and failure messages show the store's name.
void PrintTo(const StoreParam& param, std::ostream* os);
std::string StoreParamName(const ::testing::TestParamInfo<StoreParam>& info);

class TaskStoreConformanceTest : public ::testing::TestWithParam<StoreParam> {
 protected:
  void SetUp() override;
  void TearDown() override;

  void OpenStore();
  // A QUEUED task with a spec and its fingerprint.
  Task MakeTask(absl::string_view id, absl::string_view stub = "");
  static NewTask New(Task t, std::string bytes = "");
  // Inserts one task, expecting success.
  Task InsertOk(Task t, std::string bytes = "");
  absl::StatusOr<InsertResult> InsertOne(Task t, std::string bytes = "");

  std::unique_ptr<StoreHarness> harness_;
  FakeClock clock_;
  std::unique_ptr<TaskStore> store_;
};

// Test data shared by every store fixture.
// A QUEUED task with a spec and its fingerprint, created at `now`.
Task MakeTestTask(absl::string_view id, absl::string_view stub, absl::Time now);
NewTask MakeNewTask(Task t, std::string bytes);
// Inserts one task; a wrong result count is INTERNAL.
absl::StatusOr<InsertResult> InsertOneTask(TaskStore& store, Task t, std::string bytes);
// Inserts one task, expecting it created (a failure is added otherwise).
Task InsertTaskOk(TaskStore& store, Task t, std::string bytes);

// Every field of two tasks, one expectation each.
void ExpectSameTask(const Task& a, const Task& b);

}  // namespace videotask::store

#endif  // VIDEOTASK_TESTS_SERVER_STORE_STORE_CONFORMANCE_H_
