// A fresh directory per test, removed afterwards.
#ifndef VIDEOTASK_TESTS_TESTING_TEMP_DIR_H_
#define VIDEOTASK_TESTS_TESTING_TEMP_DIR_H_

#include <string>

namespace videotask::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace videotask::testing

#endif  // VIDEOTASK_TESTS_TESTING_TEMP_DIR_H_
