#include "backends/replicate/replicate_wire.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "backends/api/errors.h"
#include "common/log.h"

namespace videotask::backends::replicate_internal {
namespace {

constexpr size_t kMaxProviderMessage = 500;
constexpr size_t kMaxStatusText = 40;
// Cap on a provider-requested delay; longer values are ignored.
constexpr absl::Duration kMaxRetryAfter = absl::Hours(24);

void LogCredentialsRejectedOnce() {
  static std::atomic<bool> logged{false};
  if (!logged.exchange(true)) {
    VT_LOG_ERROR(
        "Replicate rejected the API token (HTTP 401): check REPLICATE_API_TOKEN; further "
        "rejections are not logged");
  }
}

std::string Bounded(std::string text, size_t limit) {
  if (text.size() > limit) {
    text.resize(limit);
    absl::StrAppend(&text, "...");
  }
  return text;
}

// Printable ASCII only, bounded: what may go into the store as a status.
std::string CleanStatus(absl::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxStatusText)) {
    out.push_back(c > 0x20 && c < 0x7f ? c : '?');
  }
  return out;
}

std::optional<absl::Duration> SaneDelay(std::optional<absl::Duration> delay) {
  if (!delay.has_value() || *delay <= absl::ZeroDuration() || *delay > kMaxRetryAfter) {
    return std::nullopt;
  }
  return delay;
}

std::string ExtensionFor(absl::string_view mime) {
  if (mime == "image/png") return ".png";
  if (mime == "image/jpeg") return ".jpg";
  if (mime == "image/webp") return ".webp";
  return "";
}

std::string QuoteFormValue(absl::string_view value) {
  return absl::StrReplaceAll(value, {{"\"", "%22"}, {"\r", "%0D"}, {"\n", "%0A"}});
}

}  // namespace

std::string Dump(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::optional<Json> ParseJson(absl::string_view text) {
  Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return std::nullopt;
  return json;
}

std::optional<std::string> StringField(const Json& object, const char* name) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::string ProviderMessage(absl::string_view body) {
  std::optional<Json> json = ParseJson(body);
  if (!json.has_value() || !json->is_object()) return "";
  for (const char* name : {"detail", "title", "error"}) {
    if (std::optional<std::string> text = StringField(*json, name); text.has_value()) {
      std::string message(absl::StripAsciiWhitespace(*text));
      if (!message.empty()) return Bounded(std::move(message), kMaxProviderMessage);
    }
  }
  return "";
}

bool Is2xx(int status) { return status >= 200 && status < 300; }

absl::Status Annotate(const absl::Status& status, absl::string_view prefix) {
  absl::Status out(status.code(), absl::StrCat(prefix, ": ", status.message()));
  status.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

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
  std::string text(absl::StripAsciiWhitespace(response.Header("retry-after")));
  if (!text.empty()) {
    double seconds = 0;
    if (absl::SimpleAtod(text, &seconds) && std::isfinite(seconds)) {
      return SaneDelay(absl::Seconds(seconds));
    }
    absl::string_view date = absl::StripSuffix(text, " GMT");
    absl::Time when;
    std::string err;
    if (absl::ParseTime("%a, %d %b %Y %H:%M:%S", date, absl::UTCTimeZone(), &when, &err)) {
      return SaneDelay(when - now);
    }
  }
  // One log shows it in the body: {"status":429,"retry_after":1}.
  std::optional<Json> json = ParseJson(response.body);
  if (json.has_value() && json->is_object()) {
    auto it = json->find("retry_after");
    if (it != json->end() && it->is_number()) {
      double seconds = it->get<double>();
      if (std::isfinite(seconds)) return SaneDelay(absl::Seconds(seconds));
    }
  }
  return std::nullopt;
}

absl::Status StatusFromAnswer(absl::string_view op, const HttpResponse& response,
                              absl::Time now) {
  const int code = response.status;
  const std::string provider = ProviderMessage(response.body);
  std::string message = absl::StrCat("Replicate ", op, ": HTTP ", code);
  auto with_provider = [&](absl::string_view fallback) {
    absl::StrAppend(&message, ": ", provider.empty() ? fallback : provider);
    return message;
  };
  absl::Status status;
  if (code == 400 || code == 422) {
    status = absl::InvalidArgumentError(with_provider("request refused"));
  } else if (code == 401) {
    LogCredentialsRejectedOnce();
    status = absl::UnauthenticatedError(
        absl::StrCat("Replicate ", op, ": HTTP 401: Replicate rejected the API token"));
  } else if (code == 402) {
    status = absl::FailedPreconditionError(with_provider("insufficient credit"));
  } else if (code == 403) {
    status = absl::PermissionDeniedError(with_provider("forbidden"));
  } else if (code == 404) {
    status = absl::NotFoundError(with_provider("not found"));
  } else if (code == 408) {
    status = absl::UnavailableError(with_provider("request timeout"));
  } else if (code == 409) {
    status = absl::AbortedError(with_provider("conflict"));
  } else if (code == 429) {
    status = absl::ResourceExhaustedError(with_provider("request was throttled"));
  } else if (code >= 500) {
    status = absl::UnavailableError(with_provider("provider unavailable"));
  } else if (code >= 400) {
    status = absl::FailedPreconditionError(with_provider("request refused"));
  } else {
    status = absl::UnavailableError(with_provider("unexpected answer"));
  }
  status = WithHttpStatus(std::move(status), code);
  if (code == 429 || code == 502 || code == 503 || code == 504) {
    if (std::optional<absl::Duration> delay = ParseRetryAfter(response, now); delay.has_value()) {
      status = WithRetryAfter(std::move(status), *delay);
    }
  }
  return status;
}

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

bool IsPlausiblePredictionId(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::optional<std::string> CreatePath(absl::string_view model) {
  std::vector<absl::string_view> parts = absl::StrSplit(model, '/');
  if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) return std::nullopt;
  return absl::StrCat("/v1/models/", EscapeSegment(parts[0]), "/", EscapeSegment(parts[1]),
                      "/predictions");
}

bool IsReplicateDeliveryUrl(absl::string_view url) {
  if (!absl::ConsumePrefix(&url, "https://")) return false;
  absl::string_view host = url.substr(0, url.find_first_of("/?#"));
  if (absl::StrContains(host, '@')) return false;
  host = host.substr(0, host.find(':'));
  std::string lower = absl::AsciiStrToLower(host);
  return lower == "replicate.delivery" || absl::EndsWith(lower, ".replicate.delivery");
}

std::optional<ProviderState> StateFromText(absl::string_view text) {
  if (text == "starting") return ProviderState::kPending;
  if (text == "processing") return ProviderState::kRunning;
  if (text == "succeeded") return ProviderState::kSucceeded;
  if (text == "failed") return ProviderState::kFailed;
  if (text == "canceled") return ProviderState::kCancelled;
  // A deadline passed before the prediction started: it did not run.
  if (text == "aborted") return ProviderState::kFailed;
  return std::nullopt;
}

bool IsModerationFailure(absl::string_view error) {
  std::string lower = absl::AsciiStrToLower(error);
  for (const char* word : {"(e005)", "nsfw", "sensitive", "safety", "moderat"}) {
    if (absl::StrContains(lower, word)) return true;
  }
  return false;
}

std::string FailureCode(absl::string_view error) {
  absl::string_view text = absl::StripTrailingAsciiWhitespace(error);
  if (!absl::ConsumeSuffix(&text, ")")) return "";
  size_t open = text.rfind('(');
  if (open == absl::string_view::npos) return "";
  absl::string_view code = text.substr(open + 1);
  if (code.size() < 2 || code.size() > 8 || code[0] != 'E' ||
      !std::all_of(code.begin() + 1, code.end(),
                   [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); })) {
    return "";
  }
  return std::string(code);
}

absl::StatusOr<Prediction> ParsePrediction(absl::string_view body) {
  std::optional<Json> json = ParseJson(body);
  std::optional<std::string> id;
  std::optional<std::string> status;
  if (json.has_value()) {
    id = StringField(*json, "id");
    status = StringField(*json, "status");
  }
  if (!id.has_value() || !IsPlausiblePredictionId(*id) || !status.has_value() ||
      status->empty()) {
    return absl::UnavailableError("unreadable prediction object");
  }
  Prediction p;
  p.id = *std::move(id);
  p.status = CleanStatus(*status);
  p.state = StateFromText(*status);
  auto output = json->find("output");
  if (output != json->end()) {
    if (output->is_string()) {
      p.output_urls.push_back(output->get<std::string>());
    } else if (output->is_array()) {
      for (const Json& url : *output) {
        if (url.is_string()) p.output_urls.push_back(url.get<std::string>());
      }
    }
  }
  p.error = Bounded(StringField(*json, "error").value_or(""), kMaxProviderMessage);
  auto removed = json->find("data_removed");
  p.data_removed = removed != json->end() && removed->is_boolean() && removed->get<bool>();
  return p;
}

PollResult ToPollResult(const Prediction& prediction) {
  PollResult result;
  result.state = prediction.state.value_or(ProviderState::kPending);
  result.status_text = prediction.status;
  switch (result.state) {
    case ProviderState::kSucceeded:
      result.progress = 1;
      result.output_urls = prediction.output_urls;
      break;
    case ProviderState::kFailed:
      if (prediction.status == "aborted") {
        result.failure_message =
            "Replicate aborted the prediction: its deadline passed before it started";
        result.failure_code = "aborted";
        break;
      }
      result.failure_message = prediction.error.empty() ? "the prediction failed" : prediction.error;
      result.failure_code = FailureCode(prediction.error);
      // Replicate's "Prediction interrupted; please retry" is worth another
      // try; moderation never is.
      result.failure_retryable = !IsModerationFailure(prediction.error) &&
                                 absl::StrContains(absl::AsciiStrToLower(prediction.error),
                                                   "please retry");
      break;
    case ProviderState::kPending:
    case ProviderState::kThrottled:
    case ProviderState::kRunning:
    case ProviderState::kCancelled:
      break;
  }
  return result;
}

absl::StatusOr<Json> OptionValue(const ModelOption& option, absl::string_view text) {
  auto invalid = [&](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.model_options.", option.name, " must be ", what));
  };
  switch (option.type) {
    case ModelOption::Type::kString:
    case ModelOption::Type::kEnum:
      return Json(std::string(text));
    case ModelOption::Type::kInteger: {
      int64_t value = 0;
      if (!absl::SimpleAtoi(text, &value)) return invalid("an integer");
      return Json(value);
    }
    case ModelOption::Type::kNumber: {
      double value = 0;
      if (!absl::SimpleAtod(text, &value) || !std::isfinite(value)) return invalid("a number");
      return Json(value);
    }
    case ModelOption::Type::kBoolean:
      if (text == "true") return Json(true);
      if (text == "false") return Json(false);
      return invalid("true or false");
  }
  return invalid("of a known type");
}

absl::StatusOr<Json> CreateBody(const StartRequest& request, const ResolvedOptions& resolved,
                                const ReplicateModel& model, const std::string& image) {
  Json input = Json::object();
  input[model.prompt_input] = request.prompt_text;
  input[model.image_input] = image;
  if (!model.ratio_input.empty()) input[model.ratio_input] = resolved.ratio;
  input[model.duration_input] = resolved.duration_seconds;
  if (request.seed.has_value()) {
    if (model.seed_input.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("spec.seed is not taken by model ", model.caps.name, "; leave it unset"));
    }
    input[model.seed_input] = *request.seed;
  }
  for (const auto& [name, text] : request.model_options) {
    const ModelOption* option = model.caps.FindOption(name);
    if (option == nullptr || input.contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat("spec.model_options.", name,
                                                     " is not taken by model ", model.caps.name));
    }
    absl::StatusOr<Json> value = OptionValue(*option, text);
    if (!value.ok()) return value.status();
    input[name] = *std::move(value);
  }
  return Json{{"input", std::move(input)}};
}

std::string DataUri(absl::string_view mime, absl::string_view bytes) {
  return absl::StrCat("data:", mime, ";base64,", absl::Base64Escape(bytes));
}

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
  while (!clean.empty() && clean.front() == '.') clean.erase(clean.begin());
  if (clean.size() > 100) clean.resize(100);
  if (clean.empty()) clean = "image";
  std::string ext = ExtensionFor(request.image_mime_type);
  std::string lower = absl::AsciiStrToLower(clean);
  bool has_ext = absl::EndsWith(lower, ext) || (ext == ".jpg" && absl::EndsWith(lower, ".jpeg"));
  if (!has_ext) absl::StrAppend(&clean, ext);
  return clean;
}

std::string FilesMultipartBody(absl::string_view boundary, const StartRequest& request) {
  const std::string filename = UploadFilename(request);
  std::string body;
  for (const auto& [name, value] :
       {std::pair<const char*, std::string>{"filename", filename},
        std::pair<const char*, std::string>{"type", request.image_mime_type}}) {
    absl::StrAppend(&body, "--", boundary, "\r\nContent-Disposition: form-data; name=\"", name,
                    "\"\r\n\r\n", value, "\r\n");
  }
  absl::StrAppend(&body, "--", boundary,
                  "\r\nContent-Disposition: form-data; name=\"content\"; filename=\"",
                  QuoteFormValue(filename), "\"\r\nContent-Type: ", request.image_mime_type,
                  "\r\n\r\n");
  body.append(request.image_bytes);
  absl::StrAppend(&body, "\r\n--", boundary, "--\r\n");
  return body;
}

std::optional<std::string> ParseFileUrl(absl::string_view body) {
  std::optional<Json> json = ParseJson(body);
  if (!json.has_value() || !json->is_object()) return std::nullopt;
  auto urls = json->find("urls");
  if (urls == json->end()) return std::nullopt;
  std::optional<std::string> get = StringField(*urls, "get");
  if (!get.has_value() ||
      (!absl::StartsWith(*get, "https://") && !absl::StartsWith(*get, "http://"))) {
    return std::nullopt;
  }
  return get;
}

}  // namespace videotask::backends::replicate_internal
