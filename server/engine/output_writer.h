// Writes provider outputs into the output folder: streamed to a temp file,
// size-capped, fsynced, renamed into place without overwriting another file.
#ifndef VIDEOTASK_SERVER_ENGINE_OUTPUT_WRITER_H_
#define VIDEOTASK_SERVER_ENGINE_OUTPUT_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "backends/api/backend.h"
#include "common/sha256.h"

namespace videotask::engine {

struct OutputInfo {
  std::string path;
  int64_t size_bytes = 0;
  std::string sha256;
};

// fsyncs one folder for many callers at once. Sync() returns the outcome of
// an fsync of the folder that began after Sync() was called, so every name
// the caller linked there before is durable; callers arriving while an fsync
// runs share the next one. Thread-safe.
class DirSyncer {
 public:
  explicit DirSyncer(std::string dir) : dir_(std::move(dir)) {}
  absl::Status Sync() ABSL_LOCKS_EXCLUDED(mu_);
  // fsyncs done (tests).
  int64_t syncs() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Round {
    bool done = false;
    absl::Status status;
  };
  const std::string dir_;
  mutable absl::Mutex mu_;
  std::shared_ptr<Round> next_ ABSL_GUARDED_BY(mu_);  // the round new callers join
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  int64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
};

// One output being written. Not thread-safe. The temp file is removed
// unless Commit() succeeded.
class OutputFile final : public backends::OutputSink {
 public:
  ~OutputFile() override;
  absl::Status Write(absl::string_view chunk) override;
  // fsyncs, then renames to `<dir>/<stub>.mp4`. When that name is taken by
  // an identical file (a crash between rename and the database commit), the
  // existing file is kept; by a different one, `<stub>-<task id>.mp4` is used.
  absl::StatusOr<OutputInfo> Commit();

 private:
  friend class OutputWriter;
  OutputFile(std::string dir, std::string stub, std::string task_id, std::string temp_path, int fd,
             int64_t max_bytes, DirSyncer& dir_syncer);

  std::string dir_, stub_, task_id_, temp_path_;
  DirSyncer& dir_syncer_;
  int fd_;
  int64_t max_bytes_;
  int64_t written_ = 0;
  Sha256 sha_;
  bool committed_ = false;
};

class OutputWriter {
 public:
  OutputWriter(std::string dir, int64_t max_bytes)
      : dir_(std::move(dir)), max_bytes_(max_bytes), dir_syncer_(std::make_unique<DirSyncer>(dir_)) {}
  absl::StatusOr<std::unique_ptr<OutputFile>> Begin(const std::string& stub,
                                                    const std::string& task_id) const;
  // The output of another task (`source`: its path, size and digest), for
  // a task reusing it: hard-linked where the file system allows, copied
  // (and checked against the digest) otherwise, then placed as Commit
  // places a new output. FAILED_PRECONDITION when the source is gone or
  // changed.
  absl::StatusOr<OutputInfo> Reuse(const OutputInfo& source, const std::string& stub,
                                   const std::string& task_id) const;
  const std::string& dir() const { return dir_; }
  // The folder's fsyncs, shared by the outputs committed at the same time.
  DirSyncer& dir_syncer() const { return *dir_syncer_; }

 private:
  std::string dir_;
  int64_t max_bytes_;
  std::unique_ptr<DirSyncer> dir_syncer_;
};

}  // namespace videotask::engine

#endif  // VIDEOTASK_SERVER_ENGINE_OUTPUT_WRITER_H_
