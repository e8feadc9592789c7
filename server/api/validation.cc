#include "server/api/validation.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/text.h"
#include "server/api/image_input.h"
#include "server/domain/filename_stub.h"

namespace videotask::api {
namespace {

absl::Status Invalid(absl::string_view prefix, absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(prefix, field, " ", what));
}

// "2..10" for consecutive values, else "4, 6, 8".
std::string DescribeDurations(const std::vector<int>& durations) {
  if (durations.empty()) return "none";
  bool consecutive = true;
  for (size_t i = 1; i < durations.size(); ++i) {
    consecutive = consecutive && durations[i] == durations[i - 1] + 1;
  }
  if (consecutive && durations.size() > 2) {
    return absl::StrCat(durations.front(), "..", durations.back());
  }
  return absl::StrJoin(durations, ", ");
}

bool IsRequestIdChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
         c == ':';
}

// The last path segment of a URL or path, without query or fragment.
std::string BaseName(absl::string_view path) {
  size_t cut = path.find_first_of("?#");
  if (cut != absl::string_view::npos) path = path.substr(0, cut);
  size_t slash = path.find_last_of('/');
  return std::string(slash == absl::string_view::npos ? path : path.substr(slash + 1));
}

}  // namespace

bool IsLabelKey(absl::string_view key) {
  if (key.empty() || key.size() > kMaxLabelKey) return false;
  if (!absl::ascii_islower(static_cast<unsigned char>(key.front()))) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return absl::ascii_islower(static_cast<unsigned char>(c)) ||
           absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::string LabelKeyRule() {
  return absl::StrCat("1..", kMaxLabelKey, " characters of [a-z0-9._-] starting with a letter");
}

absl::StatusOr<store::NewTask> Validator::Validate(const v1::SubmitTaskRequest& request,
                                                   absl::string_view p) const {
  store::NewTask out;
  Task& task = out.task;
  TaskSpec& spec = task.spec;

  // request_id
  if (request.request_id().size() > kMaxRequestId ||
      !std::all_of(request.request_id().begin(), request.request_id().end(), IsRequestIdChar)) {
    return Invalid(p, "request_id",
                   absl::StrCat("must be at most ", kMaxRequestId,
                                " characters of [A-Za-z0-9._:-] (or empty)"));
  }
  task.request_id = request.request_id();
  if (!request.has_spec()) return Invalid(p, "spec", "is required");
  const v1::TaskSpec& in = request.spec();

  // backend
  std::vector<std::string> enabled;
  for (const engine::EngineBackend& b : backends_) enabled.push_back(b.config.name);
  spec.backend = in.backend().empty() ? options_.default_backend : in.backend();
  const engine::EngineBackend* backend = nullptr;
  for (const engine::EngineBackend& b : backends_) {
    if (b.config.name == spec.backend) backend = &b;
  }
  if (backend == nullptr) {
    return Invalid(p, "spec.backend",
                   absl::StrCat(QuotedForError(in.backend()), " is not enabled on this server; allowed: ",
                                absl::StrJoin(enabled, ", "), " (or empty for ",
                                options_.default_backend, ")"));
  }
  const backends::Capabilities& caps = backend->backend->capabilities();

  // model
  spec.model = in.model().empty() ? caps.default_model : in.model();
  const backends::ModelCapabilities* model = caps.FindModel(spec.model);
  if (model == nullptr) {
    std::vector<std::string> names;
    for (const auto& m : caps.models) names.push_back(m.name);
    return Invalid(p, "spec.model",
                   absl::StrCat(QuotedForError(in.model()), " is not offered by backend ", spec.backend,
                                "; allowed: ", absl::StrJoin(names, ", ")));
  }

  // image
  const v1::ImageInput& image = in.image();
  if (image.filename().size() > kMaxFilename || !Utf16Length(image.filename()).has_value()) {
    return Invalid(p, "spec.image.filename",
                   absl::StrCat("must be valid UTF-8 of at most ", kMaxFilename, " bytes"));
  }
  spec.image.filename = image.filename();
  int64_t max_bytes = std::min(options_.max_image_bytes, caps.max_image_bytes > 0
                                                             ? caps.max_image_bytes
                                                             : options_.max_image_bytes);
  std::string bytes;
  std::string bytes_field;
  switch (image.source_case()) {
    case v1::ImageInput::kContent:
      bytes = image.content();
      bytes_field = "spec.image.content";
      spec.image.source = ImageSource::kContent;
      break;
    case v1::ImageInput::kUri: {
      const std::string& uri = image.uri();
      if (absl::StartsWith(uri, "data:")) {
        VT_ASSIGN_OR_RETURN(DataUri data, ParseDataUri(uri, absl::StrCat(p, "spec.image.uri")));
        bytes = std::move(data.bytes);
        bytes_field = absl::StrCat("spec.image.uri (decoded data URI)");
        spec.image.source = ImageSource::kContent;
        if (image.mime_type().empty()) spec.image.mime_type = data.mime_type;
        break;
      }
      if (!absl::StartsWith(uri, "https://") || uri.size() < 13 || uri.size() > kMaxUri ||
          std::any_of(uri.begin(), uri.end(), [](char c) {
            return static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
          })) {
        return Invalid(p, "spec.image.uri",
                       absl::StrCat("must be an https:// URL of 13..", kMaxUri,
                                    " characters without spaces, or "
                                    "data:image/<png|jpeg|webp>;base64,<data> (file://, http:// "
                                    "and bare paths are refused)"));
      }
      if (!caps.accepts_https_uri) {
        return Invalid(p, "spec.image.uri",
                       absl::StrCat("https:// images are not accepted by backend ", spec.backend,
                                    "; send the bytes in spec.image.content"));
      }
      spec.image.source = ImageSource::kUri;
      spec.image.uri = uri;
      if (spec.image.filename.empty()) spec.image.filename = BaseName(uri);
      break;
    }
    case v1::ImageInput::kServerPath: {
      if (options_.image_root.empty()) {
        return Invalid(p, "spec.image.server_path",
                       "is refused: this server has no --image_root; send the bytes in "
                       "spec.image.content instead");
      }
      VT_ASSIGN_OR_RETURN(std::string resolved,
                          ResolveUnderRoot(options_.image_root, image.server_path(),
                                           absl::StrCat(p, "spec.image.server_path")));
      absl::StatusOr<std::string> read = ReadFile(resolved, max_bytes);
      if (read.status().code() == absl::StatusCode::kOutOfRange) {
        return Invalid(p, "spec.image.server_path",
                       absl::StrCat("names a file larger than the limit of ", max_bytes, " bytes"));
      }
      if (!read.ok()) {
        return Invalid(p, "spec.image.server_path", "could not be read by the server");
      }
      bytes = *std::move(read);
      bytes_field = "spec.image.server_path";
      spec.image.source = ImageSource::kServerPath;
      spec.image.server_path = image.server_path();
      if (spec.image.filename.empty()) spec.image.filename = BaseName(image.server_path());
      break;
    }
    case v1::ImageInput::SOURCE_NOT_SET:
      return Invalid(p, "spec.image",
                     "needs exactly one source: content (bytes), uri (https:// or data:image/...) "
                     "or server_path");
  }
  if (spec.image.source != ImageSource::kUri) {
    if (bytes.empty()) return Invalid(p, bytes_field, "is empty");
    if (static_cast<int64_t>(bytes.size()) > max_bytes) {
      return Invalid(p, bytes_field,
                     absl::StrCat("has ", bytes.size(), " bytes; the limit is ", max_bytes));
    }
    VT_ASSIGN_OR_RETURN(std::string sniffed, SniffImage(bytes, absl::StrCat(p, bytes_field)));
    if (!image.mime_type().empty() && absl::AsciiStrToLower(image.mime_type()) != sniffed) {
      return Invalid(p, "spec.image.mime_type",
                     absl::StrCat("is ", QuotedForError(image.mime_type()), " but the bytes are ", sniffed));
    }
    if (!spec.image.mime_type.empty() && spec.image.mime_type != sniffed) {
      return Invalid(p, "spec.image.uri",
                     absl::StrCat("declares ", spec.image.mime_type, " but the bytes are ", sniffed));
    }
    if (std::find(caps.image_mime_types.begin(), caps.image_mime_types.end(), sniffed) ==
        caps.image_mime_types.end()) {
      return Invalid(p, bytes_field,
                     absl::StrCat("is ", sniffed, ", which backend ", spec.backend,
                                  " does not take; allowed: ",
                                  absl::StrJoin(caps.image_mime_types, ", ")));
    }
    spec.image.mime_type = sniffed;
    task.image_sha256 = Sha256Hex(bytes);
    task.image_size_bytes = static_cast<int64_t>(bytes.size());
  } else if (!image.mime_type().empty()) {
    std::string mime = absl::AsciiStrToLower(image.mime_type());
    if (std::find(caps.image_mime_types.begin(), caps.image_mime_types.end(), mime) ==
        caps.image_mime_types.end()) {
      return Invalid(p, "spec.image.mime_type",
                     absl::StrCat("is ", QuotedForError(image.mime_type()), "; allowed: ",
                                  absl::StrJoin(caps.image_mime_types, ", ")));
    }
    spec.image.mime_type = mime;
  }

  // prompt_text
  if (!in.prompt_text().empty()) {
    std::optional<int64_t> units = Utf16Length(in.prompt_text());
    if (!units.has_value()) return Invalid(p, "spec.prompt_text", "is not valid UTF-8");
    if (model->max_prompt_utf16 == 0) {
      return Invalid(p, "spec.prompt_text",
                     absl::StrCat("is not taken by model ", model->name, "; leave it empty"));
    }
    if (*units > model->max_prompt_utf16) {
      return Invalid(p, "spec.prompt_text",
                     absl::StrCat("has ", *units, " UTF-16 code units; model ", model->name,
                                  " takes 1..", model->max_prompt_utf16));
    }
  } else if (model->prompt_required) {
    return Invalid(p, "spec.prompt_text",
                   absl::StrCat("is required by model ", model->name, " (1..",
                                model->max_prompt_utf16, " UTF-16 code units)"));
  }
  spec.prompt_text = in.prompt_text();

  // ratio
  if (in.ratio().empty()) {
    spec.ratio = model->default_ratio;
  } else if (auto alias = model->ratio_aliases.find(in.ratio()); alias != model->ratio_aliases.end()) {
    spec.ratio = alias->second;
  } else if (std::find(model->ratios.begin(), model->ratios.end(), in.ratio()) !=
             model->ratios.end()) {
    spec.ratio = in.ratio();
  } else {
    std::vector<std::string> aliases;
    for (const auto& [a, r] : model->ratio_aliases) aliases.push_back(absl::StrCat(a, "=", r));
    return Invalid(p, "spec.ratio",
                   absl::StrCat(QuotedForError(in.ratio()), " is not offered by model ", model->name,
                                "; allowed: ", absl::StrJoin(model->ratios, ", "),
                                aliases.empty() ? "" : absl::StrCat(" or an alias: ",
                                                                    absl::StrJoin(aliases, ", "))));
  }

  // duration_seconds
  if (in.duration_seconds() == 0) {
    spec.duration_seconds = model->default_duration_seconds;
  } else if (std::find(model->durations.begin(), model->durations.end(), in.duration_seconds()) ==
             model->durations.end()) {
    return Invalid(p, "spec.duration_seconds",
                   absl::StrCat(in.duration_seconds(), " is not offered by model ", model->name,
                                "; allowed: ", DescribeDurations(model->durations),
                                " (0 = default ", model->default_duration_seconds, ")"));
  } else {
    spec.duration_seconds = in.duration_seconds();
  }

  if (in.has_seed()) spec.seed = in.seed();

  // target_filename_stub
  if (!in.target_filename_stub().empty() && !IsValidStub(in.target_filename_stub())) {
    return Invalid(p, "spec.target_filename_stub",
                   absl::StrCat(QuotedForError(in.target_filename_stub()), " may hold only [A-Za-z0-9._-], 1..",
                                kMaxStubLength, " characters, not starting with \".\" or \"-\""));
  }
  spec.target_filename_stub = in.target_filename_stub();
  task.target_filename_stub = spec.target_filename_stub.empty()
                                  ? DeriveFilenameStub(spec.image.filename)
                                  : spec.target_filename_stub;

  // labels
  if (in.labels_size() > kMaxLabels) {
    return Invalid(p, "spec.labels", absl::StrCat("has ", in.labels_size(), " entries; at most ", kMaxLabels));
  }
  for (const auto& [key, value] : in.labels()) {
    if (!IsLabelKey(key)) {
      return Invalid(p, "spec.labels",
                     absl::StrCat("key ", QuotedForError(key), " must be ", LabelKeyRule()));
    }
    if (value.size() > kMaxLabelValue || !Utf16Length(value).has_value()) {
      return Invalid(p, absl::StrCat("spec.labels[\"", key, "\"]"),
                     absl::StrCat("must be valid UTF-8 of at most ", kMaxLabelValue, " bytes"));
    }
    spec.labels[key] = value;
  }

  // priority, moderation
  if (in.priority() < kMinPriority || in.priority() > kMaxPriority) {
    return Invalid(p, "spec.priority",
                   absl::StrCat(in.priority(), " is out of range; allowed: ", kMinPriority, "..",
                                kMaxPriority));
  }
  spec.priority = in.priority();
  if (!in.public_figure_threshold().empty() && in.public_figure_threshold() != "auto" &&
      in.public_figure_threshold() != "low") {
    return Invalid(p, "spec.public_figure_threshold",
                   absl::StrCat(QuotedForError(in.public_figure_threshold()), "; allowed: auto, low (or empty)"));
  }
  spec.public_figure_threshold = in.public_figure_threshold();

  // Backend-specific rules (e.g. the mock's labels).
  // The bytes travel in the request and come back: no copy of the image.
  backends::StartRequest start = engine::MakeStartRequest(task, std::move(bytes));
  absl::Status backend_ok = backend->backend->Validate(start);
  bytes = std::move(start.image_bytes);
  if (!backend_ok.ok()) {
    return absl::Status(backend_ok.code(), absl::StrCat(p, backend_ok.message()));
  }

  task.spec_fingerprint = SpecFingerprint(spec, task.image_sha256);
  out.image_bytes = std::move(bytes);
  return out;
}

}  // namespace videotask::api
