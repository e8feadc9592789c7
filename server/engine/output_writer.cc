#include "server/engine/output_writer.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace videotask::engine {
namespace {

// Hashes a file, for comparing a clashing output with ours.
absl::StatusOr<std::string> FileSha256(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open output");
  Sha256 sha;
  char buf[64 << 10];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) sha.Update(absl::string_view(buf, n));
  ::close(fd);
  if (n < 0) return ErrnoStatus(errno, "read output");
  return sha.HexDigest();
}

// Puts the finished file `temp` at `<dir>/<stub>.mp4`. link() never
// replaces an existing name, unlike rename(): when the name is taken by an
// identical file (a crash between placing and the database commit) that
// one is kept; by a different one, `<stub>-<task id>.mp4` is used. The
// caller removes `temp` afterwards.
absl::StatusOr<std::string> PlaceOutput(const std::string& temp, const std::string& dir,
                                        const std::string& stub, const std::string& task_id,
                                        const std::string& sha256) {
  std::string path = absl::StrCat(dir, "/", stub, ".mp4");
  if (::link(temp.c_str(), path.c_str()) != 0) {
    if (errno != EEXIST) return ErrnoStatus(errno, "link output");
    VT_ASSIGN_OR_RETURN(std::string existing, FileSha256(path));
    if (existing != sha256) {
      path = absl::StrCat(dir, "/", stub, "-", task_id, ".mp4");
      if (::rename(temp.c_str(), path.c_str()) != 0) return ErrnoStatus(errno, "rename output");
    }
  }
  return path;
}

// Copies `source` to `temp` (created), fsynced; its digest.
absl::StatusOr<std::string> CopyFile(const std::string& source, const std::string& temp) {
  int in = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoStatus(errno, "open reused output");
  int out = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    absl::Status status = ErrnoStatus(errno, "create output temp file");
    ::close(in);
    return status;
  }
  Sha256 sha;
  absl::Status status;
  char buf[64 << 10];
  ssize_t n;
  while (status.ok() && (n = ::read(in, buf, sizeof(buf))) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = ErrnoStatus(errno, "read reused output");
      break;
    }
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out, buf + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        status = ErrnoStatus(errno, "write output");
        break;
      }
      done += w;
    }
    sha.Update(absl::string_view(buf, static_cast<size_t>(n)));
  }
  if (status.ok() && ::fsync(out) != 0) status = ErrnoStatus(errno, "fsync output");
  ::close(in);
  ::close(out);
  if (!status.ok()) return status;
  return sha.HexDigest();
}

}  // namespace

absl::Status DirSyncer::Sync() {
  mu_.Lock();
  if (next_ == nullptr) next_ = std::make_shared<Round>();
  std::shared_ptr<Round> mine = next_;
  while (!mine->done) {
    if (running_) {
      // The running fsync may have begun before our link: wait for it to
      // end, then ours begins.
      mu_.Await(absl::Condition(
          +[](bool* running) { return !*running; }, &running_));
      continue;
    }
    // Lead our round; later callers join the next one.
    running_ = true;
    next_ = nullptr;
    mu_.Unlock();
    absl::Status status = SyncDir(dir_);
    mu_.Lock();
    mine->status = std::move(status);
    mine->done = true;
    running_ = false;
    ++syncs_;
  }
  absl::Status result = mine->status;
  mu_.Unlock();
  return result;
}

int64_t DirSyncer::syncs() const {
  absl::MutexLock lock(&mu_);
  return syncs_;
}

OutputFile::OutputFile(std::string dir, std::string stub, std::string task_id,
                       std::string temp_path, int fd, int64_t max_bytes, DirSyncer& dir_syncer)
    : dir_(std::move(dir)),
      stub_(std::move(stub)),
      task_id_(std::move(task_id)),
      temp_path_(std::move(temp_path)),
      dir_syncer_(dir_syncer),
      fd_(fd),
      max_bytes_(max_bytes) {}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
}

absl::Status OutputFile::Write(absl::string_view chunk) {
  if (written_ + static_cast<int64_t>(chunk.size()) > max_bytes_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("output is larger than the limit of ", max_bytes_, " bytes"));
  }
  size_t done = 0;
  while (done < chunk.size()) {
    ssize_t n = ::write(fd_, chunk.data() + done, chunk.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "write output");
    done += static_cast<size_t>(n);
  }
  sha_.Update(chunk);
  written_ += static_cast<int64_t>(chunk.size());
  return absl::OkStatus();
}

absl::StatusOr<OutputInfo> OutputFile::Commit() {
  if (written_ == 0) return absl::UnavailableError("the provider's output was empty");
  if (::fsync(fd_) != 0) return ErrnoStatus(errno, "fsync output");
  ::close(fd_);
  fd_ = -1;
  OutputInfo info;
  info.size_bytes = written_;
  info.sha256 = sha_.HexDigest();
  VT_ASSIGN_OR_RETURN(info.path, PlaceOutput(temp_path_, dir_, stub_, task_id_, info.sha256));
  ::unlink(temp_path_.c_str());
  committed_ = true;
  VT_RETURN_IF_ERROR(dir_syncer_.Sync());
  return info;
}

absl::StatusOr<OutputInfo> OutputWriter::Reuse(const OutputInfo& source, const std::string& stub,
                                               const std::string& task_id) const {
  VT_RETURN_IF_ERROR(MakeDirs(dir_));
  struct stat st;
  if (::stat(source.path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size != source.size_bytes) {
    return absl::FailedPreconditionError(
        absl::StrCat("the output to reuse, ", source.path, ", is gone or changed"));
  }
  const std::string temp = absl::StrCat(dir_, "/.", stub, ".", task_id, ".part");
  ::unlink(temp.c_str());  // a leftover of a try cut short
  if (::link(source.path.c_str(), temp.c_str()) != 0) {
    // Another file system, or one without hard links: a copy, checked.
    absl::StatusOr<std::string> sha = CopyFile(source.path, temp);
    if (sha.ok() && *sha != source.sha256) {
      sha = absl::FailedPreconditionError(
          absl::StrCat("the output to reuse, ", source.path, ", changed"));
    }
    if (!sha.ok()) {
      ::unlink(temp.c_str());
      return sha.status();
    }
  }
  OutputInfo info = source;
  absl::StatusOr<std::string> path = PlaceOutput(temp, dir_, stub, task_id, source.sha256);
  ::unlink(temp.c_str());
  if (!path.ok()) return path.status();
  info.path = *std::move(path);
  VT_RETURN_IF_ERROR(SyncDir(dir_));
  return info;
}

absl::StatusOr<std::unique_ptr<OutputFile>> OutputWriter::Begin(const std::string& stub,
                                                                const std::string& task_id) const {
  std::string temp = absl::StrCat(dir_, "/.", stub, ".", task_id, ".part");
  constexpr int kFlags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  int fd = ::open(temp.c_str(), kFlags, 0644);
  if (fd < 0 && errno == ENOENT) {
    // The folder is made on the first output (or again, if it was removed).
    VT_RETURN_IF_ERROR(MakeDirs(dir_));
    fd = ::open(temp.c_str(), kFlags, 0644);
  }
  if (fd < 0) return ErrnoStatus(errno, "create output temp file");
  return std::unique_ptr<OutputFile>(
      new OutputFile(dir_, stub, task_id, temp, fd, max_bytes_, *dir_syncer_));
}

}  // namespace videotask::engine
