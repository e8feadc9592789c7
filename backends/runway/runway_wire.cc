#include "backends/runway/runway_wire.h"

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
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "backends/api/errors.h"
#include "common/log.h"

namespace videotask::backends::runway_internal {
namespace {

constexpr size_t kMaxProviderMessage = 500;
// Cap on a provider-requested delay; longer values are ignored.
constexpr absl::Duration kMaxRetryAfter = absl::Hours(24);

void LogCredentialsRejectedOnce() {
  static std::atomic<bool> logged{false};
  if (!logged.exchange(true)) {
    VT_LOG_ERROR(
        "RunwayML rejected the API key (HTTP 401): check RUNWAYML_API_SECRET; further "
        "rejections are not logged");
  }
}

std::string ExtensionFor(absl::string_view mime) {
  if (mime == "image/png") return ".png";
  if (mime == "image/jpeg") return ".jpg";
  if (mime == "image/webp") return ".webp";
  return "";
}

}  // namespace

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

Json CreateBody(const StartRequest& request, const ResolvedOptions& resolved,
                const std::string& prompt_image) {
  Json body = Json::object();
  body["model"] = resolved.model;
  body["promptImage"] = prompt_image;
  if (!request.prompt_text.empty()) body["promptText"] = request.prompt_text;
  body["ratio"] = resolved.ratio;
  body["duration"] = resolved.duration_seconds;
  if (request.seed.has_value()) body["seed"] = *request.seed;
  if (!request.public_figure_threshold.empty()) {
    body["contentModeration"] = {{"publicFigureThreshold", request.public_figure_threshold}};
  }
  return body;
}

std::string MultipartBody(const Json& fields, absl::string_view boundary,
                          const StartRequest& request) {
  std::string body;
  for (auto it = fields.begin(); it != fields.end(); ++it) {
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
  return body;
}

}  // namespace videotask::backends::runway_internal
