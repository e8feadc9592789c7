#ifndef VIDEOTASK_BACKENDS_MOCK_MOCK_VIDEO_H_
#define VIDEOTASK_BACKENDS_MOCK_MOCK_VIDEO_H_

#include "absl/strings/string_view.h"

namespace videotask::backends {

// The bytes of a small, playable MP4 (video/mp4).
absl::string_view MockVideo();

}  // namespace videotask::backends

#endif  // VIDEOTASK_BACKENDS_MOCK_MOCK_VIDEO_H_
