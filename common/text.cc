#include "common/text.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace videotask {

std::optional<int64_t> Utf16Length(absl::string_view utf8) {
  int64_t units = 0;
  size_t i = 0;
  while (i < utf8.size()) {
    unsigned char c = static_cast<unsigned char>(utf8[i]);
    int extra;
    uint32_t cp;
    if (c < 0x80) {
      extra = 0;
      cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return std::nullopt;
    }
    if (i + extra >= utf8.size()) return std::nullopt;  // truncated
    for (int k = 1; k <= extra; ++k) {
      unsigned char cc = static_cast<unsigned char>(utf8[i + k]);
      if ((cc & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return std::nullopt;
    }
    units += cp >= 0x10000 ? 2 : 1;
    i += extra + 1;
  }
  return units;
}

std::string QuotedForError(absl::string_view value) {
  constexpr size_t kShown = 64;
  std::string shown = absl::CHexEscape(value.substr(0, kShown));
  if (value.size() <= kShown) return absl::StrCat("\"", shown, "\"");
  return absl::StrCat("\"", shown, "...\" (", value.size(), " bytes)");
}

bool IsCallerName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    const bool alnum = absl::ascii_isalnum(c);
    if (i == 0 && !alnum) return false;
    if (!alnum && c != '.' && c != '_' && c != '@' && c != '-') return false;
  }
  return true;
}

}  // namespace videotask
