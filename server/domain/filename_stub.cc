#include "server/domain/filename_stub.h"

#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace videotask {
namespace {

bool IsStubChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

// Strips one trailing "_draft" (any case) or "_<digits>"; false when none.
bool StripOneSuffix(std::string& s) {
  size_t us = s.find_last_of('_');
  if (us == std::string::npos) return false;
  absl::string_view tail = absl::string_view(s).substr(us + 1);
  bool digits = !tail.empty() && std::all_of(tail.begin(), tail.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
  if (!digits && !absl::EqualsIgnoreCase(tail, "draft")) return false;
  s.resize(us);
  return true;
}

}  // namespace

std::string DeriveFilenameStub(absl::string_view filename) {
  size_t slash = filename.find_last_of("/\\");
  if (slash != absl::string_view::npos) filename.remove_prefix(slash + 1);
  size_t dot = filename.find_last_of('.');
  if (dot != absl::string_view::npos && dot > 0) filename = filename.substr(0, dot);

  // Sanitize: keep [A-Za-z0-9._-], fold every other run into one "_".
  std::string s;
  for (char c : filename) {
    if (IsStubChar(c)) {
      s.push_back(c);
    } else if (s.empty() || s.back() != '_') {
      s.push_back('_');
    }
  }
  while (StripOneSuffix(s)) {
  }
  // Trim separators left at either end, and leading dots (hidden files).
  size_t begin = s.find_first_not_of("._-");
  size_t end = s.find_last_not_of("._-");
  s = begin == std::string::npos ? std::string() : s.substr(begin, end - begin + 1);
  const size_t room = kMaxStubLength - 6;  // "_video"
  if (s.size() > room) s.resize(room);
  while (!s.empty() && (s.back() == '_' || s.back() == '-' || s.back() == '.')) s.pop_back();
  return s.empty() ? std::string("video") : s + "_video";
}

bool IsValidStub(absl::string_view stub) {
  if (stub.empty() || stub.size() > kMaxStubLength) return false;
  if (stub.front() == '.' || stub.front() == '-') return false;
  return std::all_of(stub.begin(), stub.end(), IsStubChar);
}

}  // namespace videotask
