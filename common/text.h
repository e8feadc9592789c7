// Small text helpers.
#ifndef VIDEOTASK_COMMON_TEXT_H_
#define VIDEOTASK_COMMON_TEXT_H_

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"

namespace videotask {

// Number of UTF-16 code units `utf8` would take, or nullopt when it is not
// valid UTF-8 (overlong forms, surrogates and values past U+10FFFF refused).
std::optional<int64_t> Utf16Length(absl::string_view utf8);

}  // namespace videotask

#endif  // VIDEOTASK_COMMON_TEXT_H_
