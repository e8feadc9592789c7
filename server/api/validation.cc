#include "server/api/validation.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/api/capabilities.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/text.h"
#include "server/api/image_input.h"
#include "server/domain/daily_budget.h"
#include "server/domain/filename_stub.h"
#include "server/domain/start_request.h"
#include "server/webhooks/webhook_policy.h"

namespace videotask::api {
namespace {

absl::Status Invalid(absl::string_view prefix, absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(prefix, field, " ", what));
}

// A backend's or a capability check's error, under the caller's prefix.
absl::Status Prefixed(absl::string_view prefix, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
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

absl::Status CheckRequestId(const std::string& id, absl::string_view p) {
  if (id.size() <= kMaxRequestId && std::all_of(id.begin(), id.end(), IsRequestIdChar)) {
    return absl::OkStatus();
  }
  return Invalid(p, "request_id",
                 absl::StrCat("must be at most ", kMaxRequestId,
                              " characters of [A-Za-z0-9._:-] (or empty)"));
}

// Prompt, ratio and duration against the model's declared capabilities.
absl::Status ValidatePromptRatioDuration(const v1::TaskSpec& in, const backends::ModelCapabilities& model,
                                  absl::string_view p, TaskSpec& spec) {
  VT_RETURN_IF_ERROR(Prefixed(p, backends::CheckPrompt(model, in.prompt_text())));
  spec.prompt_text = in.prompt_text();
  absl::StatusOr<std::string> ratio = backends::ResolveRatio(model, in.ratio());
  if (!ratio.ok()) return Prefixed(p, ratio.status());
  spec.ratio = *std::move(ratio);
  absl::StatusOr<int> duration = backends::ResolveDuration(model, in.duration_seconds());
  if (!duration.ok()) return Prefixed(p, duration.status());
  spec.duration_seconds = *duration;
  std::map<std::string, std::string> options(in.model_options().begin(), in.model_options().end());
  VT_RETURN_IF_ERROR(Prefixed(p, backends::CheckModelOptions(model, options)));
  spec.model_options = std::move(options);
  return absl::OkStatus();
}

absl::Status ValidateStub(const v1::TaskSpec& in, absl::string_view p, Task& task) {
  if (!in.target_filename_stub().empty() && !IsValidStub(in.target_filename_stub())) {
    return Invalid(p, "spec.target_filename_stub",
                   absl::StrCat(QuotedForError(in.target_filename_stub()),
                                " may hold only [A-Za-z0-9._-], 1..", kMaxStubLength,
                                " characters, not starting with \".\" or \"-\""));
  }
  task.spec.target_filename_stub = in.target_filename_stub();
  task.target_filename_stub = task.spec.target_filename_stub.empty()
                                  ? DeriveFilenameStub(task.spec.image.filename)
                                  : task.spec.target_filename_stub;
  return absl::OkStatus();
}

absl::Status ValidateLabels(const v1::TaskSpec& in, absl::string_view p, TaskSpec& spec) {
  if (in.labels_size() > kMaxLabels) {
    return Invalid(p, "spec.labels",
                   absl::StrCat("has ", in.labels_size(), " entries; at most ", kMaxLabels));
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
  return absl::OkStatus();
}

absl::Status ValidatePriority(const v1::TaskSpec& in, absl::string_view p, TaskSpec& spec) {
  if (in.priority() < kMinPriority || in.priority() > kMaxPriority) {
    return Invalid(p, "spec.priority",
                   absl::StrCat(in.priority(), " is out of range; allowed: ", kMinPriority, "..",
                                kMaxPriority));
  }
  spec.priority = in.priority();
  return absl::OkStatus();
}

absl::Status ValidateNotify(const v1::TaskSpec& in, absl::string_view p,
                            const ValidatorOptions& options, TaskSpec& spec) {
  if (in.notify_url().empty() && in.notify_events().empty()) return absl::OkStatus();
  const absl::string_view field = in.notify_url().empty() ? "spec.notify_events" : "spec.notify_url";
  if (!options.webhooks_enabled) {
    return Invalid(p, field, "is refused: webhooks are off on this server (no --webhook_secret_file)");
  }
  if (in.notify_url().size() > kMaxNotifyUrl) {
    return Invalid(p, "spec.notify_url", absl::StrCat("is longer than ", kMaxNotifyUrl, " bytes"));
  }
  if (!in.notify_url().empty()) {
    absl::Status allowed = backends::CheckOutboundUrl(in.notify_url(), options.webhook_allow_hosts);
    if (!allowed.ok()) return Invalid(p, "spec.notify_url", allowed.message());
  }
  std::vector<std::string> events(in.notify_events().begin(), in.notify_events().end());
  VT_RETURN_IF_ERROR(Prefixed(p, webhooks::CheckNotifyEvents(events)));
  std::sort(events.begin(), events.end());
  events.erase(std::unique(events.begin(), events.end()), events.end());
  spec.notify_url = in.notify_url();
  spec.notify_events = std::move(events);
  return absl::OkStatus();
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
  VT_RETURN_IF_ERROR(CheckRequestId(request.request_id(), p));
  task.request_id = request.request_id();
  if (request.reuse() != v1::REUSE_NONE && request.reuse() != v1::REUSE_IDENTICAL) {
    return Invalid(p, "reuse",
                   absl::StrCat("is ", static_cast<int>(request.reuse()),
                                "; allowed: REUSE_NONE (0) or REUSE_IDENTICAL (1)"));
  }
  out.reuse = request.reuse() == v1::REUSE_IDENTICAL;
  if (!request.has_spec()) return Invalid(p, "spec", "is required");
  const v1::TaskSpec& in = request.spec();

  VT_ASSIGN_OR_RETURN(const backends::EnabledBackend* backend, ResolveBackend(in, p, spec));
  const backends::Capabilities& caps = backend->backend->capabilities();
  absl::StatusOr<const backends::ModelCapabilities*> model =
      backends::ResolveModel(caps, spec.backend, in.model());
  if (!model.ok()) return Prefixed(p, model.status());
  spec.model = (*model)->name;

  std::string bytes;
  VT_RETURN_IF_ERROR(ValidateImage(in.image(), caps, p, task, bytes));
  VT_RETURN_IF_ERROR(ValidatePromptRatioDuration(in, **model, p, spec));
  task.estimated_cost_micros = EstimateCostMicros((*model)->usd_per_second, spec.duration_seconds);
  if (in.has_seed()) spec.seed = in.seed();
  VT_RETURN_IF_ERROR(ValidateStub(in, p, task));
  VT_RETURN_IF_ERROR(ValidateLabels(in, p, spec));
  VT_RETURN_IF_ERROR(ValidatePriority(in, p, spec));
  VT_RETURN_IF_ERROR(Prefixed(
      p, backends::CheckPublicFigureThreshold(caps, spec.backend, in.public_figure_threshold())));
  spec.public_figure_threshold = in.public_figure_threshold();
  VT_RETURN_IF_ERROR(ValidateNotify(in, p, options_, spec));

  // Backend-specific rules (e.g. the mock's labels). The bytes travel in the
  // request and come back: no copy of the image.
  backends::StartRequest start = MakeStartRequest(task, std::move(bytes));
  absl::Status backend_ok = backend->backend->Validate(start);
  bytes = std::move(start.image_bytes);
  VT_RETURN_IF_ERROR(Prefixed(p, backend_ok));

  task.spec_fingerprint = SpecFingerprint(spec, task.image_sha256);
  out.image_bytes = std::move(bytes);
  return out;
}

absl::StatusOr<const backends::EnabledBackend*> Validator::ResolveBackend(const v1::TaskSpec& in,
                                                                          absl::string_view p,
                                                                          TaskSpec& spec) const {
  spec.backend = in.backend().empty() ? options_.default_backend : in.backend();
  std::vector<std::string> enabled;
  for (const backends::EnabledBackend& b : backends_) {
    if (b.config.name == spec.backend) return &b;
    enabled.push_back(b.config.name);
  }
  return Invalid(p, "spec.backend",
                 absl::StrCat(QuotedForError(in.backend()),
                              " is not enabled on this server; allowed: ",
                              absl::StrJoin(enabled, ", "), " (or empty for ",
                              options_.default_backend, ")"));
}

absl::Status Validator::ValidateImage(const v1::ImageInput& image,
                                      const backends::Capabilities& caps, absl::string_view p,
                                      Task& task, std::string& bytes) const {
  TaskSpec& spec = task.spec;
  if (image.filename().size() > kMaxFilename || !Utf16Length(image.filename()).has_value()) {
    return Invalid(p, "spec.image.filename",
                   absl::StrCat("must be valid UTF-8 of at most ", kMaxFilename, " bytes"));
  }
  spec.image.filename = image.filename();
  std::string bytes_field;
  VT_RETURN_IF_ERROR(ReadImageSource(image, caps, p, spec, bytes, bytes_field));
  if (spec.image.source == ImageSource::kUri) {
    if (image.mime_type().empty()) return absl::OkStatus();
    VT_RETURN_IF_ERROR(Prefixed(p, backends::CheckDeclaredImageType(caps, image.mime_type())));
    spec.image.mime_type = absl::AsciiStrToLower(image.mime_type());
    return absl::OkStatus();
  }
  VT_RETURN_IF_ERROR(Prefixed(
      p, backends::CheckImageSize(bytes_field, static_cast<int64_t>(bytes.size()),
                                  backends::ImageByteLimit(caps, options_.max_image_bytes))));
  VT_ASSIGN_OR_RETURN(std::string sniffed, SniffImage(bytes, absl::StrCat(p, bytes_field)));
  if (!image.mime_type().empty() && absl::AsciiStrToLower(image.mime_type()) != sniffed) {
    return Invalid(p, "spec.image.mime_type",
                   absl::StrCat("is ", QuotedForError(image.mime_type()), " but the bytes are ",
                                sniffed));
  }
  if (!spec.image.mime_type.empty() && spec.image.mime_type != sniffed) {
    return Invalid(p, "spec.image.uri",
                   absl::StrCat("declares ", spec.image.mime_type, " but the bytes are ", sniffed));
  }
  VT_RETURN_IF_ERROR(
      Prefixed(p, backends::CheckImageType(caps, spec.backend, bytes_field, sniffed)));
  spec.image.mime_type = sniffed;
  task.image_sha256 = Sha256Hex(bytes);
  task.image_size_bytes = static_cast<int64_t>(bytes.size());
  return absl::OkStatus();
}

absl::Status Validator::ReadImageSource(const v1::ImageInput& image,
                                        const backends::Capabilities& caps, absl::string_view p,
                                        TaskSpec& spec, std::string& bytes,
                                        std::string& bytes_field) const {
  switch (image.source_case()) {
    case v1::ImageInput::kContent:
      bytes = image.content();
      bytes_field = "spec.image.content";
      spec.image.source = ImageSource::kContent;
      return absl::OkStatus();
    case v1::ImageInput::kUri: {
      const std::string& uri = image.uri();
      if (absl::StartsWith(uri, "data:")) {
        VT_ASSIGN_OR_RETURN(DataUri data, ParseDataUri(uri, absl::StrCat(p, "spec.image.uri")));
        bytes = std::move(data.bytes);
        bytes_field = "spec.image.uri (decoded data URI)";
        spec.image.source = ImageSource::kContent;
        if (image.mime_type().empty()) spec.image.mime_type = data.mime_type;
        return absl::OkStatus();
      }
      if (!backends::IsHttpsImageUri(uri)) {
        return Invalid(p, "spec.image.uri",
                       absl::StrCat("must be an https:// URL of 13..", kMaxUri,
                                    " characters without spaces, or "
                                    "data:image/<png|jpeg|webp>;base64,<data> (file://, http:// "
                                    "and bare paths are refused)"));
      }
      VT_RETURN_IF_ERROR(Prefixed(p, backends::CheckImageUriAccepted(caps, spec.backend)));
      spec.image.source = ImageSource::kUri;
      spec.image.uri = uri;
      if (spec.image.filename.empty()) spec.image.filename = BaseName(uri);
      return absl::OkStatus();
    }
    case v1::ImageInput::kServerPath: {
      VT_ASSIGN_OR_RETURN(bytes,
                          ReadServerPath(image.server_path(),
                                         backends::ImageByteLimit(caps, options_.max_image_bytes),
                                         p));
      bytes_field = "spec.image.server_path";
      spec.image.source = ImageSource::kServerPath;
      spec.image.server_path = image.server_path();
      if (spec.image.filename.empty()) spec.image.filename = BaseName(image.server_path());
      return absl::OkStatus();
    }
    case v1::ImageInput::SOURCE_NOT_SET:
      break;
  }
  return Invalid(p, "spec.image",
                 "needs exactly one source: content (bytes), uri (https:// or data:image/...) "
                 "or server_path");
}

absl::StatusOr<std::string> Validator::ReadServerPath(const std::string& path, int64_t max_bytes,
                                                      absl::string_view p) const {
  if (options_.image_root.empty()) {
    return Invalid(p, "spec.image.server_path",
                   "is refused: this server has no --image_root; send the bytes in "
                   "spec.image.content instead");
  }
  VT_ASSIGN_OR_RETURN(std::string resolved,
                      ResolveUnderRoot(options_.image_root, path,
                                       absl::StrCat(p, "spec.image.server_path")));
  absl::StatusOr<std::string> read = ReadFile(resolved, max_bytes);
  if (read.status().code() == absl::StatusCode::kOutOfRange) {
    return Invalid(p, "spec.image.server_path",
                   absl::StrCat("names a file larger than the limit of ", max_bytes, " bytes"));
  }
  if (!read.ok()) return Invalid(p, "spec.image.server_path", "could not be read by the server");
  return read;
}

}  // namespace videotask::api
