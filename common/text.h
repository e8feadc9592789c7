// Small text helpers.
#ifndef VIDEOTASK_COMMON_TEXT_H_
#define VIDEOTASK_COMMON_TEXT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace videotask {

// Number of UTF-16 code units `utf8` would take, or nullopt when it is not
// valid UTF-8 (overlong forms, surrogates and values past U+10FFFF refused).
std::optional<int64_t> Utf16Length(absl::string_view utf8);

// A caller's value as an error message shows it: in double quotes, bytes
// outside printable ASCII (and quotes, backslashes) C-escaped, at most the
// first 64 bytes followed by `..." (N bytes)`. A hostile 4 MiB field cannot
// make a 4 MiB error, nor break a log line.
std::string QuotedForError(absl::string_view value);

// Who submitted a task: a caller name from the token file, or this one when
// the server runs without tokens.
inline constexpr char kAnonymousCaller[] = "anonymous";
// A caller name: 1..64 characters of [A-Za-z0-9._@-], starting with a
// letter or a digit.
bool IsCallerName(absl::string_view name);
// The rule above, for error messages.
inline constexpr char kCallerNameRule[] =
    "1-64 characters of [A-Za-z0-9._@-], starting with a letter or digit";

}  // namespace videotask

#endif  // VIDEOTASK_COMMON_TEXT_H_
