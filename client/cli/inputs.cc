#include "client/cli/inputs.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "common/sha256.h"

namespace videotask::cli {

bool IsImageName(absl::string_view name) {
  for (absl::string_view ext : {".png", ".jpg", ".jpeg", ".webp"}) {
    if (name.size() > ext.size() && absl::EndsWithIgnoreCase(name, ext)) return true;
  }
  return false;
}

absl::StatusOr<std::vector<std::string>> ListImages(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, absl::StrCat("opening folder ", dir));
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.' || !IsImageName(name)) continue;
    struct stat st {};
    if (stat(absl::StrCat(dir, "/", name).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    names.push_back(std::move(name));
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string SidecarName(absl::string_view image_name) {
  size_t dot = image_name.rfind('.');
  absl::string_view stem = dot == absl::string_view::npos ? image_name : image_name.substr(0, dot);
  return absl::StrCat(stem, ".txt");
}

absl::StatusOr<std::vector<ManifestRow>> ParseManifestCsv(absl::string_view text) {
  std::vector<ManifestRow> rows;
  size_t i = 0;
  int line = 1;
  if (absl::StartsWith(text, "\xEF\xBB\xBF")) i = 3;  // UTF-8 byte order mark
  bool first = true;
  while (i < text.size()) {
    int row_line = line;
    std::vector<std::string> fields(1);
    bool in_quotes = false;
    bool quoted_field = false;
    for (; i < text.size(); ++i) {
      char c = text[i];
      if (in_quotes) {
        if (c == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            fields.back().push_back('"');
            ++i;
          } else {
            in_quotes = false;
          }
        } else {
          if (c == '\n') ++line;
          fields.back().push_back(c);
        }
        continue;
      }
      if (c == '"') {
        if (!fields.back().empty() || quoted_field) {
          return absl::InvalidArgumentError(
              absl::StrCat("--manifest: line ", line, ": a quote inside an unquoted field"));
        }
        in_quotes = true;
        quoted_field = true;
      } else if (c == ',') {
        fields.emplace_back();
        quoted_field = false;
      } else if (c == '\n') {
        ++line;
        ++i;
        break;
      } else if (c != '\r') {
        fields.back().push_back(c);
      }
    }
    if (in_quotes) {
      return absl::InvalidArgumentError(
          absl::StrCat("--manifest: line ", row_line, ": a quoted field is not closed"));
    }
    if (fields.size() == 1 && absl::StripAsciiWhitespace(fields[0]).empty()) continue;
    if (fields.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat("--manifest: line ", row_line, ": expected 2 fields (image,prompt), got ",
                                                     fields.size()));
    }
    std::string image(absl::StripAsciiWhitespace(fields[0]));
    if (first && absl::AsciiStrToLower(image) == "image" &&
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(fields[1])) == "prompt") {
      first = false;
      continue;
    }
    first = false;
    if (image.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--manifest: line ", row_line, ": empty image name"));
    }
    rows.push_back(ManifestRow{std::move(image), TrimPrompt(fields[1]), row_line});
  }
  return rows;
}

absl::StatusOr<std::map<std::string, std::string>> ParseLabels(
    const std::vector<std::string>& pairs, absl::string_view flag) {
  std::map<std::string, std::string> labels;
  for (const std::string& pair : pairs) {
    size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": \"", pair, "\" is not of the form key=value"));
    }
    labels[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  return labels;
}

namespace {

void AppendField(std::string& out, absl::string_view tag, absl::string_view value) {
  absl::StrAppend(&out, tag, ":", value.size(), ":", value, ";");
}

}  // namespace

std::string StableRequestId(absl::string_view image_bytes, const v1::TaskSpec& spec) {
  std::string canon;
  AppendField(canon, "v", "1");
  AppendField(canon, "image_sha256", Sha256Hex(image_bytes));
  AppendField(canon, "filename", spec.image().filename());
  AppendField(canon, "prompt", spec.prompt_text());
  AppendField(canon, "model", spec.model());
  AppendField(canon, "ratio", spec.ratio());
  AppendField(canon, "duration", absl::StrCat(spec.duration_seconds()));
  AppendField(canon, "seed", spec.has_seed() ? absl::StrCat(spec.seed()) : "");
  AppendField(canon, "backend", spec.backend());
  AppendField(canon, "stub", spec.target_filename_stub());
  std::map<std::string, std::string> labels(spec.labels().begin(), spec.labels().end());
  for (const auto& [k, v] : labels) {
    AppendField(canon, "label_key", k);
    AppendField(canon, "label_value", v);
  }
  AppendField(canon, "priority", absl::StrCat(spec.priority()));
  AppendField(canon, "public_figure_threshold", spec.public_figure_threshold());
  // Only when set: ids of requests without options stay as they were.
  std::map<std::string, std::string> options(spec.model_options().begin(),
                                             spec.model_options().end());
  for (const auto& [k, v] : options) {
    AppendField(canon, "model_option_key", k);
    AppendField(canon, "model_option_value", v);
  }
  // Only when set, as above.
  if (!spec.notify_url().empty()) AppendField(canon, "notify_url", spec.notify_url());
  for (const std::string& event : spec.notify_events()) AppendField(canon, "notify_event", event);
  return absl::StrCat("sd-", Sha256Hex(canon).substr(0, 32));
}

std::string TrimPrompt(absl::string_view text) {
  return std::string(absl::StripAsciiWhitespace(text));
}

}  // namespace videotask::cli
