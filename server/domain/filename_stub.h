// Output file names derived from image file names (DESIGN.md "Target
// filename stub").
#ifndef VIDEOTASK_SERVER_DOMAIN_FILENAME_STUB_H_
#define VIDEOTASK_SERVER_DOMAIN_FILENAME_STUB_H_

#include <string>

#include "absl/strings/string_view.h"

namespace videotask {

// Longest stub we produce or accept (the file is "<stub>.mp4", plus "_NNN"
// for clashes, well under NAME_MAX).
inline constexpr size_t kMaxStubLength = 200;

// "video_queue/elegant_business_classic_tt_draft.png" ->
// "elegant_business_classic_tt_video": drops the directory and the
// extension, strips trailing "_draft" and trailing number groups ("_01",
// "_2") in any order and repeatedly, keeps only [A-Za-z0-9._-] (others
// become "_", runs folded), then appends "_video". A name with nothing left
// gives "video".
std::string DeriveFilenameStub(absl::string_view filename);

// True when `stub` may be used as a file name as is: 1..kMaxStubLength
// characters of [A-Za-z0-9._-], not starting with "." or "-".
bool IsValidStub(absl::string_view stub);

}  // namespace videotask

#endif  // VIDEOTASK_SERVER_DOMAIN_FILENAME_STUB_H_
