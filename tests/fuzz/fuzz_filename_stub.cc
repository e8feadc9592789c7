// Fuzzes the output file name derivation: whatever the image's name, the
// stub is a safe single path component and is accepted by IsValidStub.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "server/domain/filename_stub.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::string stub = videotask::DeriveFilenameStub(input);
  if (!videotask::IsValidStub(stub)) std::abort();
  if (stub.size() > videotask::kMaxStubLength || absl::StrContains(stub, '/') ||
      stub == "." || stub == ".." || stub[0] == '.' || stub[0] == '-') {
    std::abort();
  }
  // A stub accepted from a caller must be just as safe.
  if (videotask::IsValidStub(input)) {
    if (input.empty() || input.size() > videotask::kMaxStubLength ||
        absl::StrContains(input, '/') || absl::StrContains(input, '\0') || input[0] == '.') {
      std::abort();
    }
  }
  return 0;
}
