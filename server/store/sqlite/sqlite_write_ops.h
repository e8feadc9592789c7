// The write requests queued for SqliteTaskStore's writer thread (private to
// the store's .cc files).
#ifndef VIDEOTASK_SERVER_STORE_SQLITE_SQLITE_WRITE_OPS_H_
#define VIDEOTASK_SERVER_STORE_SQLITE_SQLITE_WRITE_OPS_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "server/store/sqlite/sqlite_task_store.h"
#include "server/store/store_util.h"

namespace videotask::store {

struct SqliteTaskStore::WriteContext {
  absl::flat_hash_set<std::string> blob_candidates;  // digests maybe no longer needed
  std::vector<std::string> files_to_delete;          // after the commit
};

class SqliteTaskStore::WriteOp {
 public:
  virtual ~WriteOp() = default;
  // Each unit runs in its own savepoint.
  virtual int units() const = 0;
  virtual absl::Status Apply(SqliteTaskStore& store, int unit, WriteContext& ctx) = 0;
  // The unit failed, or its transaction did not commit.
  virtual void Fail(int unit, absl::Status status) = 0;
  // Every unit is settled; runs once on the writer thread.
  virtual void Complete() = 0;
};

class SqliteTaskStore::InsertOp final : public WriteOp {
 public:
  InsertOp(std::vector<NewTask> tasks, std::function<void(InsertResults)> done)
      : tasks_(std::move(tasks)),
        results_(tasks_.size(), absl::InternalError("insert not processed")),
        precheck_(tasks_.size()),
        done_(std::move(done)) {}

  int units() const override { return static_cast<int>(tasks_.size()); }
  NewTask& task(int unit) { return tasks_[unit]; }
  void SetPrecheck(int unit, absl::Status status) { precheck_[unit] = std::move(status); }

  absl::Status Apply(SqliteTaskStore& store, int unit, WriteContext& ctx) override {
    if (!precheck_[unit].ok()) return precheck_[unit];
    NewTask& item = tasks_[unit];
    absl::StatusOr<InsertResult> result = store.InsertOne(item, ctx);
    // A blob file written for an insert that created nothing may be unused.
    if ((!result.ok() || !result->created) && internal::IsHexDigest(item.task.image_sha256)) {
      ctx.blob_candidates.insert(item.task.image_sha256);
    }
    if (!result.ok()) return result.status();
    results_[unit] = *std::move(result);
    return absl::OkStatus();
  }
  void Fail(int unit, absl::Status status) override { results_[unit] = std::move(status); }
  void Complete() override {
    tasks_.clear();  // frees image bytes before the callback runs
    done_(std::move(results_));
  }

 private:
  std::vector<NewTask> tasks_;
  InsertResults results_;
  std::vector<absl::Status> precheck_;
  std::function<void(InsertResults)> done_;
};

class SqliteTaskStore::CallOp final : public WriteOp {
 public:
  CallOp(std::function<absl::Status(WriteContext&)> fn, absl::Status* out, absl::Notification* done)
      : fn_(std::move(fn)), out_(out), done_(done) {}
  int units() const override { return 1; }
  absl::Status Apply(SqliteTaskStore&, int, WriteContext& ctx) override { return fn_(ctx); }
  void Fail(int, absl::Status status) override { status_ = std::move(status); }
  void Complete() override {
    *out_ = std::move(status_);
    done_->Notify();  // the waiter owns out_ and done_ from here on
  }

 private:
  std::function<absl::Status(WriteContext&)> fn_;
  absl::Status status_;
  absl::Status* out_;
  absl::Notification* done_;
};

}  // namespace videotask::store

#endif  // VIDEOTASK_SERVER_STORE_SQLITE_SQLITE_WRITE_OPS_H_
