#include "backends/runway/runway_backend.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "backends/api/errors.h"
#include "backends/http/url_policy.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/text.h"

namespace videotask::backends {
namespace {

using Json = nlohmann::json;

constexpr absl::Duration kUploadTimeout = absl::Minutes(5);
constexpr absl::Duration kDownloadTimeout = absl::Minutes(30);
constexpr int64_t kMaxApiAnswerBytes = 4 << 20;
constexpr size_t kMaxProviderMessage = 500;
constexpr size_t kMaxImageUriChars = 2048;

// Cap on a provider-requested delay; longer values are ignored.
constexpr absl::Duration kMaxRetryAfter = absl::Hours(24);

const std::vector<std::string>& ImageMimeTypes() {
  static const auto* types = new std::vector<std::string>{"image/png", "image/jpeg", "image/webp"};
  return *types;
}

std::string Dump(const Json& json) {
  // Invalid UTF-8 is replaced rather than thrown on.
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::optional<Json> ParseJson(absl::string_view text) {
  Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return std::nullopt;
  return json;
}

// A string member of an object, or nullopt.
std::optional<std::string> StringField(const Json& object, const char* name) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// The provider's own words from an error body ({"error": "..."}), bounded.
std::string ProviderMessage(absl::string_view body) {
  std::optional<Json> json = ParseJson(body);
  std::string message;
  if (json.has_value() && json->is_object()) {
    if (std::optional<std::string> error = StringField(*json, "error"); error.has_value()) {
      message = *error;
    } else if (std::optional<std::string> msg = StringField(*json, "message"); msg.has_value()) {
      message = *msg;
    }
  }
  if (message.size() > kMaxProviderMessage) {
    message.resize(kMaxProviderMessage);
    absl::StrAppend(&message, "...");
  }
  return message;
}

bool Is2xx(int status) { return status >= 200 && status < 300; }

// Rebuilds `status` with `prefix` in front of its message, payloads kept.
absl::Status Annotate(const absl::Status& status, absl::string_view prefix) {
  absl::Status out(status.code(), absl::StrCat(prefix, ": ", status.message()));
  status.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

// The same failure without the "may have been sent" mark: used for steps
// before the create, which bill nothing and are safe to repeat.
absl::Status NotSent(const absl::Status& status) {
  absl::Status out(status.code(), status.message());
  if (std::optional<absl::Duration> delay = RetryAfter(status); delay.has_value()) {
    out = WithRetryAfter(out, *delay);
  }
  if (std::optional<int> http = HttpStatus(status); http.has_value()) {
    out = WithHttpStatus(out, *http);
  }
  return out;
}

std::optional<absl::Duration> ParseRetryAfter(const HttpResponse& response, absl::Time now) {
  std::optional<absl::Duration> delay;
  std::string ms_text(absl::StripAsciiWhitespace(response.Header("retry-after-ms")));
  double ms = 0;
  if (!ms_text.empty() && absl::SimpleAtod(ms_text, &ms) && std::isfinite(ms) && ms > 0) {
    delay = absl::Milliseconds(ms);
  }
  std::string text(absl::StripAsciiWhitespace(response.Header("retry-after")));
  if (!delay.has_value() && !text.empty()) {
    double seconds = 0;
    if (absl::SimpleAtod(text, &seconds) && std::isfinite(seconds) && seconds > 0) {
      delay = absl::Seconds(seconds);
    } else {
      // HTTP-date, e.g. "Wed, 21 Oct 2015 07:28:00 GMT".
      absl::string_view date = absl::StripSuffix(text, " GMT");
      absl::Time when;
      std::string err;
      if (absl::ParseTime("%a, %d %b %Y %H:%M:%S", date, absl::UTCTimeZone(), &when, &err) &&
          when > now) {
        delay = when - now;
      }
    }
  }
  if (!delay.has_value() || *delay <= absl::ZeroDuration() || *delay > kMaxRetryAfter) {
    return std::nullopt;
  }
  return delay;
}

void LogCredentialsRejectedOnce() {
  static std::atomic<bool> logged{false};
  if (!logged.exchange(true)) {
    VT_LOG_ERROR(
        "RunwayML rejected the API key (HTTP 401): check RUNWAYML_API_SECRET; further "
        "rejections are not logged");
  }
}

// Maps an HTTP answer that is not a success to a status (see errors.h).
// These requests were answered, so nothing here is "maybe sent".
absl::Status StatusFromAnswer(absl::string_view op, const HttpResponse& response,
                              absl::Time now) {
  const int code = response.status;
  const std::string provider = ProviderMessage(response.body);
  std::string message = absl::StrCat("RunwayML ", op, ": HTTP ", code);
  auto with_provider = [&](absl::string_view fallback) {
    if (!provider.empty()) {
      absl::StrAppend(&message, ": ", provider);
    } else if (!fallback.empty()) {
      absl::StrAppend(&message, ": ", fallback);
    }
    return message;
  };
  absl::Status status;
  if (code == 400 || code == 422) {
    status = absl::InvalidArgumentError(with_provider("request refused"));
  } else if (code == 401) {
    LogCredentialsRejectedOnce();
    status = absl::UnauthenticatedError(
        absl::StrCat("RunwayML ", op, ": HTTP 401: RunwayML rejected the API key"));
  } else if (code == 403) {
    status = absl::PermissionDeniedError(with_provider("forbidden"));
  } else if (code == 404) {
    status = absl::NotFoundError(with_provider("not found"));
  } else if (code == 408) {
    status = absl::UnavailableError(with_provider("request timeout"));
  } else if (code == 409) {
    status = absl::AbortedError(with_provider("conflict"));
  } else if (code == 429) {
    status = absl::ResourceExhaustedError(with_provider("too many requests or daily limit reached"));
  } else if (code >= 500) {
    status = absl::UnavailableError(with_provider("provider unavailable"));
  } else if (code >= 400) {
    status = absl::FailedPreconditionError(with_provider("request refused"));
  } else {
    status = absl::UnavailableError(with_provider("unexpected answer"));
  }
  status = WithHttpStatus(std::move(status), code);
  if (code == 429 || code == 503 || code == 502 || code == 504) {
    if (std::optional<absl::Duration> delay = ParseRetryAfter(response, now); delay.has_value()) {
      status = WithRetryAfter(std::move(status), *delay);
    }
  }
  return status;
}

// Percent-encodes one path segment.
std::string EscapeSegment(absl::string_view segment) {
  std::string out;
  for (char c : segment) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
        c == '~') {
      out.push_back(c);
    } else {
      absl::StrAppend(&out, "%", absl::AsciiStrToUpper(absl::BytesToHexString(
                                     absl::string_view(&c, 1))));
    }
  }
  return out;
}

std::string ExtensionFor(absl::string_view mime) {
  if (mime == "image/png") return ".png";
  if (mime == "image/jpeg") return ".jpg";
  if (mime == "image/webp") return ".webp";
  return "";
}

// A safe file name for the uploads endpoint: the base name, [A-Za-z0-9._-]
// only, with an extension matching the type.
std::string UploadFilename(const StartRequest& request) {
  absl::string_view name = request.image_filename;
  size_t slash = name.find_last_of("/\\");
  if (slash != absl::string_view::npos) name = name.substr(slash + 1);
  std::string clean;
  for (char c : name) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') {
      clean.push_back(c);
    }
  }
  clean = std::string(absl::StripLeadingAsciiWhitespace(clean));
  while (!clean.empty() && clean.front() == '.') clean.erase(clean.begin());
  if (clean.size() > 100) clean.resize(100);
  if (clean.empty()) clean = "image";
  std::string ext = ExtensionFor(request.image_mime_type);
  std::string lower = absl::AsciiStrToLower(clean);
  bool has_ext = absl::EndsWith(lower, ext) ||
                 (ext == ".jpg" && absl::EndsWith(lower, ".jpeg"));
  if (!has_ext) absl::StrAppend(&clean, ext);
  return clean;
}

// A provider task id as the API hands them out (UUIDs): 1..128 characters of
// printable ASCII without spaces. Anything else is not trusted into logs,
// the store or request paths.
bool IsPlausibleTaskId(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// Form-data names and file names inside quotes.
std::string QuoteFormValue(absl::string_view value) {
  return absl::StrReplaceAll(value, {{"\"", "%22"}, {"\r", "%0D"}, {"\n", "%0A"}});
}

int64_t DataUriLength(absl::string_view mime, int64_t bytes) {
  return static_cast<int64_t>(absl::StrCat("data:", mime, ";base64,").size()) +
         4 * ((bytes + 2) / 3);
}

ModelCapabilities Model(std::string name, std::vector<std::string> ratios,
                        std::map<std::string, std::string> aliases, std::vector<int> durations,
                        int default_duration, bool prompt_required, double credits) {
  ModelCapabilities m;
  m.name = std::move(name);
  m.default_ratio = ratios.front();
  m.ratios = std::move(ratios);
  m.ratio_aliases = std::move(aliases);
  m.durations = std::move(durations);
  m.default_duration_seconds = default_duration;
  m.max_prompt_utf16 = 1000;
  m.prompt_required = prompt_required;
  m.credits_per_second = credits;
  return m;
}

std::vector<int> Range(int from, int to) {
  std::vector<int> out;
  for (int i = from; i <= to; ++i) out.push_back(i);
  return out;
}

absl::StatusOr<ProviderState> StateFromText(absl::string_view text) {
  if (text == "PENDING") return ProviderState::kPending;
  if (text == "THROTTLED") return ProviderState::kThrottled;
  if (text == "RUNNING") return ProviderState::kRunning;
  if (text == "SUCCEEDED") return ProviderState::kSucceeded;
  if (text == "FAILED") return ProviderState::kFailed;
  if (text == "CANCELLED") return ProviderState::kCancelled;
  return absl::UnavailableError(absl::StrCat("RunwayML get task: unknown task status \"",
                                             text.substr(0, 40), "\""));
}

}  // namespace

Capabilities RunwayCapabilities(int64_t max_image_bytes) {
  const std::vector<std::string> veo_ratios = {"1280:720", "720:1280", "1080:1920", "1920:1080"};
  const std::map<std::string, std::string> veo_aliases = {{"16:9", "1280:720"},
                                                          {"9:16", "720:1280"}};
  Capabilities caps;
  caps.default_model = "gen4_turbo";
  caps.models.push_back(Model("gen4_turbo", Gen4Ratios(), Gen4RatioAliases(), Range(2, 10), 4,
                              /*prompt_required=*/false, 5));
  caps.models.push_back(Model("gen4.5", Gen4Ratios(), Gen4RatioAliases(), Range(2, 10), 4,
                              /*prompt_required=*/true, 12));
  caps.models.push_back(
      Model("veo3.1", veo_ratios, veo_aliases, {4, 6, 8}, 8, /*prompt_required=*/false, 40));
  caps.models.push_back(
      Model("veo3.1_fast", veo_ratios, veo_aliases, {4, 6, 8}, 8, /*prompt_required=*/false, 15));
  caps.models.push_back(
      Model("veo3", veo_ratios, veo_aliases, {8}, 8, /*prompt_required=*/false, 40));
  caps.models.push_back(Model("gemini_omni_flash", {"1280:720", "720:1280"}, veo_aliases,
                              Range(3, 10), 4, /*prompt_required=*/false, 0));
  caps.max_image_bytes = max_image_bytes;
  caps.image_mime_types = ImageMimeTypes();
  caps.accepts_https_uri = true;
  return caps;
}

absl::StatusOr<std::unique_ptr<RunwayBackend>> RunwayBackend::Create(const BackendConfig& config,
                                                                     const BackendDeps& deps) {
  if (config.api_secret.empty()) {
    return absl::FailedPreconditionError(
        "RUNWAYML_API_SECRET is not set: the runway backend needs a RunwayML API key");
  }
  if (deps.http == nullptr) {
    return absl::FailedPreconditionError("the runway backend needs an HTTP transport");
  }
  std::string base_url = config.base_url.empty() ? kRunwayDefaultBaseUrl : config.base_url;
  while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
  if (absl::Status allowed = CheckUrlAllowed(base_url); !allowed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("runway base URL refused: ", allowed.message()));
  }
  if (config.max_output_bytes <= 0 || config.max_image_bytes <= 0) {
    return absl::InvalidArgumentError("runway: max_image_bytes and max_output_bytes must be positive");
  }
  return std::unique_ptr<RunwayBackend>(new RunwayBackend(config, std::move(base_url), deps));
}

RunwayBackend::RunwayBackend(const BackendConfig& config, std::string base_url,
                             const BackendDeps& deps)
    : config_(config),
      base_url_(std::move(base_url)),
      http_(deps.http),
      clock_(deps.clock),
      capabilities_(RunwayCapabilities(config.max_image_bytes)) {}

absl::Status RunwayBackend::Scrub(absl::Status status) const {
  if (status.ok() || config_.api_secret.empty() ||
      !absl::StrContains(status.message(), config_.api_secret)) {
    return status;
  }
  absl::Status out(status.code(),
                   absl::StrReplaceAll(status.message(), {{config_.api_secret, "[redacted]"}}));
  status.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

HttpRequest RunwayBackend::ApiRequest(absl::string_view method, absl::string_view path,
                                      std::string body) const {
  HttpRequest request;
  request.method = std::string(method);
  request.url = absl::StrCat(base_url_, path);
  request.headers = {{"Authorization", absl::StrCat("Bearer ", config_.api_secret)},
                     {"X-Runway-Version", kRunwayApiVersion},
                     {"Accept", "application/json"}};
  if (!body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  request.body = std::move(body);
  request.max_response_bytes = kMaxApiAnswerBytes;
  return request;
}

absl::Status RunwayBackend::Validate(const StartRequest& request) const {
  const ModelCapabilities* model = capabilities_.FindModel(request.model);
  if (model == nullptr) {
    std::vector<std::string> names;
    for (const ModelCapabilities& m : capabilities_.models) names.push_back(m.name);
    return absl::InvalidArgumentError(absl::StrCat("spec.model is \"", request.model,
                                                   "\"; allowed: ", absl::StrJoin(names, ", ")));
  }
  if (std::find(model->ratios.begin(), model->ratios.end(), request.ratio) == model->ratios.end()) {
    return absl::InvalidArgumentError(absl::StrCat("spec.ratio is \"", request.ratio,
                                                   "\"; allowed for ", model->name, ": ",
                                                   absl::StrJoin(model->ratios, ", ")));
  }
  if (std::find(model->durations.begin(), model->durations.end(), request.duration_seconds) ==
      model->durations.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec.duration_seconds is ", request.duration_seconds, "; allowed for ", model->name, ": ",
        absl::StrJoin(model->durations, ", ")));
  }
  if (model->prompt_required && request.prompt_text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.prompt_text is required for model ", model->name));
  }
  if (!request.prompt_text.empty()) {
    std::optional<int64_t> units = Utf16Length(request.prompt_text);
    if (!units.has_value()) {
      return absl::InvalidArgumentError("spec.prompt_text is not valid UTF-8");
    }
    if (*units > model->max_prompt_utf16) {
      return absl::InvalidArgumentError(absl::StrCat("spec.prompt_text is ", *units,
                                                     " UTF-16 units long; allowed: at most ",
                                                     model->max_prompt_utf16));
    }
  }
  const bool has_bytes = !request.image_bytes.empty();
  const bool has_uri = !request.image_uri.empty();
  if (has_bytes == has_uri) {
    return absl::InvalidArgumentError(
        "spec.image: exactly one of image content and an https:// URI is required");
  }
  if (has_uri) {
    if (!absl::StartsWith(request.image_uri, "https://") ||
        request.image_uri.size() > kMaxImageUriChars) {
      return absl::InvalidArgumentError(absl::StrCat(
          "spec.image.uri must be an https:// URL of at most ", kMaxImageUriChars, " characters"));
    }
  } else {
    const auto& types = ImageMimeTypes();
    if (std::find(types.begin(), types.end(), request.image_mime_type) == types.end()) {
      return absl::InvalidArgumentError(absl::StrCat("spec.image.mime_type is \"",
                                                     request.image_mime_type, "\"; allowed: ",
                                                     absl::StrJoin(types, ", ")));
    }
    if (static_cast<int64_t>(request.image_bytes.size()) > config_.max_image_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("spec.image.content is ",
                                                     request.image_bytes.size(),
                                                     " bytes; allowed: at most ",
                                                     config_.max_image_bytes));
    }
  }
  if (!request.public_figure_threshold.empty() && request.public_figure_threshold != "auto" &&
      request.public_figure_threshold != "low") {
    return absl::InvalidArgumentError(absl::StrCat("public_figure_threshold is \"",
                                                   request.public_figure_threshold,
                                                   "\"; allowed: auto, low"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RunwayBackend::PromptImage(const StartRequest& request) {
  if (!request.image_uri.empty()) return request.image_uri;
  if (DataUriLength(request.image_mime_type, request.image_bytes.size()) <=
      kRunwayMaxDataUriChars) {
    return absl::StrCat("data:", request.image_mime_type, ";base64,",
                        absl::Base64Escape(request.image_bytes));
  }
  return Upload(request);
}

absl::StatusOr<std::string> RunwayBackend::Upload(const StartRequest& request) {
  Json ask = {{"filename", UploadFilename(request)}, {"type", "ephemeral"}};
  absl::StatusOr<HttpResponse> answer = http_->Send(ApiRequest("POST", "/v1/uploads", Dump(ask)));
  if (!answer.ok()) return NotSent(Annotate(answer.status(), "RunwayML uploads"));
  if (!Is2xx(answer->status)) {
    return StatusFromAnswer("uploads", *answer, clock_.Now());
  }
  std::optional<Json> json = ParseJson(answer->body);
  std::optional<std::string> upload_url;
  std::optional<std::string> runway_uri;
  const Json* fields = nullptr;
  if (json.has_value()) {
    upload_url = StringField(*json, "uploadUrl");
    runway_uri = StringField(*json, "runwayUri");
    auto it = json->is_object() ? json->find("fields") : json->end();
    if (json->is_object() && it != json->end() && it->is_object()) fields = &*it;
  }
  if (!upload_url.has_value() || !runway_uri.has_value() || fields == nullptr ||
      !absl::StartsWith(*runway_uri, "runway://")) {
    return absl::UnavailableError(
        absl::StrCat("RunwayML uploads: unreadable answer (HTTP ", answer->status, ")"));
  }
  if (absl::Status allowed = CheckUrlAllowed(*upload_url); !allowed.ok()) {
    return absl::UnavailableError(
        absl::StrCat("RunwayML uploads: upload URL refused: ", allowed.message()));
  }

  // multipart/form-data: every field, then the file.
  absl::BitGen gen;
  std::string boundary;
  do {
    boundary = absl::StrCat("videotask-", absl::Hex(absl::Uniform<uint64_t>(gen)),
                            absl::Hex(absl::Uniform<uint64_t>(gen)));
  } while (absl::StrContains(request.image_bytes, boundary));
  std::string body;
  for (auto it = fields->begin(); it != fields->end(); ++it) {
    std::string value = it->is_string() ? it->get<std::string>() : Dump(*it);
    absl::StrAppend(&body, "--", boundary, "\r\nContent-Disposition: form-data; name=\"",
                    QuoteFormValue(it.key()), "\"\r\n\r\n", value, "\r\n");
  }
  absl::StrAppend(&body, "--", boundary,
                  "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"",
                  QuoteFormValue(UploadFilename(request)), "\"\r\nContent-Type: ",
                  request.image_mime_type, "\r\n\r\n");
  body.append(request.image_bytes);
  absl::StrAppend(&body, "\r\n--", boundary, "--\r\n");

  HttpRequest post;
  post.method = "POST";
  post.url = *upload_url;
  post.headers = {{"Content-Type", absl::StrCat("multipart/form-data; boundary=", boundary)}};
  post.body = std::move(body);
  post.timeout = kUploadTimeout;
  post.max_response_bytes = kMaxApiAnswerBytes;
  absl::StatusOr<HttpResponse> stored = http_->Send(post);
  if (!stored.ok()) return NotSent(Annotate(stored.status(), "RunwayML image upload"));
  if (!Is2xx(stored->status)) {
    // The presigned target's error body is not passed on.
    std::string message =
        absl::StrCat("RunwayML image upload: the upload target answered HTTP ", stored->status);
    absl::Status status;
    if (stored->status == 400 || stored->status == 413) {
      status = absl::InvalidArgumentError(message);
    } else if (stored->status == 429) {
      status = absl::ResourceExhaustedError(message);
    } else {
      status = absl::UnavailableError(message);
    }
    return WithHttpStatus(std::move(status), stored->status);
  }
  VT_LOG_INFO("runway: uploaded image of task {} ({} bytes)", request.task_id,
              request.image_bytes.size());
  return *runway_uri;
}

absl::StatusOr<std::string> RunwayBackend::Start(const StartRequest& request) {
  VT_RETURN_IF_ERROR(Validate(request));
  absl::StatusOr<std::string> image = PromptImage(request);
  if (!image.ok()) return Scrub(image.status());

  Json body = Json::object();
  body["model"] = request.model;
  body["promptImage"] = *image;
  if (!request.prompt_text.empty()) body["promptText"] = request.prompt_text;
  body["ratio"] = request.ratio;
  body["duration"] = request.duration_seconds;
  if (request.seed.has_value()) body["seed"] = *request.seed;
  if (!request.public_figure_threshold.empty()) {
    body["contentModeration"] = {{"publicFigureThreshold", request.public_figure_threshold}};
  }
  absl::StatusOr<HttpResponse> answer =
      http_->Send(ApiRequest("POST", "/v1/image_to_video", Dump(body)));
  if (!answer.ok()) {
    // Transport failures keep their "maybe sent" mark.
    return Scrub(Annotate(answer.status(), "RunwayML image_to_video"));
  }
  if (!Is2xx(answer->status)) {
    return Scrub(StatusFromAnswer("image_to_video", *answer, clock_.Now()));
  }
  std::optional<Json> json = ParseJson(answer->body);
  std::optional<std::string> id;
  if (json.has_value()) id = StringField(*json, "id");
  if (!id.has_value() || !IsPlausibleTaskId(*id)) {
    // Answered with success but unreadable: the task may exist.
    return MarkMaybeSent(WithHttpStatus(
        absl::UnavailableError(absl::StrCat(
            "RunwayML image_to_video: unreadable answer (HTTP ", answer->status,
            "); the provider task may have been created")),
        answer->status));
  }
  VT_LOG_INFO("runway: task {} created provider task {} ({}, {}, {} s)", request.task_id, *id,
              request.model, request.ratio, request.duration_seconds);
  return *id;
}

absl::StatusOr<PollResult> RunwayBackend::Poll(absl::string_view provider_task_id) {
  absl::StatusOr<PollResult> result = PollInternal(provider_task_id);
  if (!result.ok()) return Scrub(result.status());
  return result;
}

absl::StatusOr<PollResult> RunwayBackend::PollInternal(absl::string_view provider_task_id) {
  if (provider_task_id.empty()) return absl::NotFoundError("RunwayML get task: empty task id");
  absl::StatusOr<HttpResponse> answer = http_->Send(
      ApiRequest("GET", absl::StrCat("/v1/tasks/", EscapeSegment(provider_task_id)), ""));
  if (!answer.ok()) return Annotate(answer.status(), "RunwayML get task");
  if (!Is2xx(answer->status)) return StatusFromAnswer("get task", *answer, clock_.Now());

  std::optional<Json> json = ParseJson(answer->body);
  std::optional<std::string> status_text;
  if (json.has_value()) status_text = StringField(*json, "status");
  if (!status_text.has_value()) {
    return absl::UnavailableError(
        absl::StrCat("RunwayML get task: unreadable answer (HTTP ", answer->status, ")"));
  }
  VT_ASSIGN_OR_RETURN(ProviderState state, StateFromText(*status_text));
  PollResult result;
  result.state = state;
  result.status_text = *status_text;
  auto progress = json->find("progress");
  if (progress != json->end() && progress->is_number()) {
    double p = progress->get<double>();
    if (std::isfinite(p)) result.progress = static_cast<float>(std::clamp(p, 0.0, 1.0));
  }
  switch (state) {
    case ProviderState::kSucceeded: {
      result.progress = 1;
      auto output = json->find("output");
      if (output != json->end() && output->is_array()) {
        for (const Json& url : *output) {
          if (url.is_string()) result.output_urls.push_back(url.get<std::string>());
        }
      }
      break;
    }
    case ProviderState::kFailed: {
      result.failure_message = StringField(*json, "failure").value_or("");
      result.failure_code = StringField(*json, "failureCode").value_or("");
      result.failure_retryable = result.failure_code == "INTERNAL" ||
                                 absl::StartsWith(result.failure_code, "INTERNAL.");
      break;
    }
    case ProviderState::kPending:
    case ProviderState::kThrottled:
    case ProviderState::kRunning:
    case ProviderState::kCancelled:
      break;
  }
  return result;
}

absl::Status RunwayBackend::Cancel(absl::string_view provider_task_id) {
  if (provider_task_id.empty()) return absl::OkStatus();
  absl::StatusOr<HttpResponse> answer = http_->Send(
      ApiRequest("DELETE", absl::StrCat("/v1/tasks/", EscapeSegment(provider_task_id)), ""));
  if (!answer.ok()) return Scrub(Annotate(answer.status(), "RunwayML cancel task"));
  if (Is2xx(answer->status) || answer->status == 404) return absl::OkStatus();
  return Scrub(StatusFromAnswer("cancel task", *answer, clock_.Now()));
}

absl::Status RunwayBackend::Download(const std::string& url, OutputSink& sink,
                                     bool* retry_with_fresh_url) {
  *retry_with_fresh_url = false;
  if (absl::Status allowed = CheckUrlAllowed(url); !allowed.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("RunwayML output download refused: ", allowed.message()));
  }
  HttpRequest get;
  get.method = "GET";
  get.url = url;  // presigned: no Runway headers go to the storage host
  get.timeout = kDownloadTimeout;
  get.max_response_bytes = config_.max_output_bytes;
  bool sink_failed = false;
  absl::StatusOr<HttpResponse> answer =
      http_->SendStreaming(get, [&sink, &sink_failed](absl::string_view chunk) {
        absl::Status status = sink.Write(chunk);
        if (!status.ok()) sink_failed = true;
        return status;
      });
  const std::string what = absl::StrCat("RunwayML output download of ", RedactUrl(url));
  if (!answer.ok()) {
    if (answer.status().code() == absl::StatusCode::kResourceExhausted && !sink_failed) {
      return absl::FailedPreconditionError(absl::StrCat(
          what, ": the video is larger than max_output_bytes (", config_.max_output_bytes, ")"));
    }
    return Annotate(answer.status(), what);
  }
  const int code = answer->status;
  if (Is2xx(code)) return absl::OkStatus();
  std::string message = absl::StrCat(what, ": HTTP ", code);
  if (code == 401 || code == 403 || code == 404 || code == 410) {
    *retry_with_fresh_url = true;
    return WithHttpStatus(absl::UnavailableError(absl::StrCat(message, " (expired URL?)")), code);
  }
  if (code == 429) {
    absl::Status status = WithHttpStatus(absl::ResourceExhaustedError(message), code);
    if (std::optional<absl::Duration> d = ParseRetryAfter(*answer, clock_.Now()); d.has_value()) {
      status = WithRetryAfter(std::move(status), *d);
    }
    return status;
  }
  return WithHttpStatus(absl::UnavailableError(message), code);
}

absl::Status RunwayBackend::FetchOutput(absl::string_view provider_task_id,
                                        const std::vector<std::string>& output_urls,
                                        OutputSink& sink) {
  std::vector<std::string> urls = output_urls;
  bool refreshed = false;
  auto refresh = [&]() -> absl::Status {
    refreshed = true;
    VT_ASSIGN_OR_RETURN(PollResult poll, PollInternal(provider_task_id));
    if (poll.state != ProviderState::kSucceeded) {
      return absl::FailedPreconditionError(absl::StrCat("RunwayML task ", provider_task_id,
                                                        " is ", poll.status_text,
                                                        ", not SUCCEEDED: no output to fetch"));
    }
    urls = std::move(poll.output_urls);
    return absl::OkStatus();
  };
  if (urls.empty()) {
    if (absl::Status s = refresh(); !s.ok()) return Scrub(s);
  }
  while (true) {
    if (urls.empty()) {
      return absl::UnavailableError(
          absl::StrCat("RunwayML task ", provider_task_id, " succeeded but lists no output"));
    }
    bool stale = false;
    absl::Status status = Download(urls.front(), sink, &stale);
    if (status.ok() || !stale || refreshed) return Scrub(status);
    VT_LOG_INFO("runway: output URL of {} answered {}; asking for a fresh one",
                std::string(provider_task_id),
                HttpStatus(status).value_or(0));
    if (absl::Status s = refresh(); !s.ok()) return Scrub(s);
  }
}

namespace {

class RunwayBackendFactory final : public BackendFactory {
 public:
  absl::string_view name() const override { return "runway"; }
  absl::StatusOr<std::unique_ptr<Backend>> Create(const BackendConfig& config,
                                                  const BackendDeps& deps) const override {
    VT_ASSIGN_OR_RETURN(std::unique_ptr<RunwayBackend> backend,
                        RunwayBackend::Create(config, deps));
    return std::unique_ptr<Backend>(std::move(backend));
  }
};

}  // namespace

std::unique_ptr<BackendFactory> NewRunwayBackendFactory() {
  return std::make_unique<RunwayBackendFactory>();
}

}  // namespace videotask::backends
