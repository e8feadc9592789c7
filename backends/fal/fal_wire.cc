#include "backends/fal/fal_wire.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "backends/api/errors.h"
#include "common/log.h"

namespace videotask::backends::fal_internal {
namespace {

constexpr size_t kMaxProviderMessage = 500;
constexpr absl::Duration kMaxRetryAfter = absl::Hours(24);

void LogCredentialsRejectedOnce() {
  static std::atomic<bool> logged{false};
  if (!logged.exchange(true)) {
    VT_LOG_ERROR(
        "fal rejected the key (HTTP 401): check FAL_KEY; further rejections are not logged");
  }
}

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

bool IsName(absl::string_view s) {
  return !s.empty() && s != "." && s != ".." && std::all_of(s.begin(), s.end(), IsNameChar);
}

std::string Bounded(std::string message) {
  if (message.size() > kMaxProviderMessage) {
    message.resize(kMaxProviderMessage);
    absl::StrAppend(&message, "...");
  }
  return message;
}

// Moderation refusals: trying again with the same input fails again.
bool IsModeration(absl::string_view type) {
  return type == "content_policy_violation" || absl::StrContains(type, "safety") ||
         absl::StrContains(type, "moderation") || absl::StrContains(type, "nsfw");
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

bool Is2xx(int status) { return status >= 200 && status < 300; }

absl::Status Annotate(const absl::Status& status, absl::string_view prefix) {
  absl::Status out(status.code(), absl::StrCat(prefix, ": ", status.message()));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
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
  if (text.empty()) return std::nullopt;
  std::optional<absl::Duration> delay;
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds) && std::isfinite(seconds) && seconds > 0) {
    delay = absl::Seconds(seconds);
  } else {
    absl::string_view date = absl::StripSuffix(text, " GMT");
    absl::Time when;
    std::string err;
    if (absl::ParseTime("%a, %d %b %Y %H:%M:%S", date, absl::UTCTimeZone(), &when, &err) &&
        when > now) {
      delay = when - now;
    }
  }
  if (!delay.has_value() || *delay <= absl::ZeroDuration() || *delay > kMaxRetryAfter) {
    return std::nullopt;
  }
  return delay;
}

std::string EscapeSegment(absl::string_view segment) {
  std::string out;
  for (char c : segment) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
        c == '~') {
      out.push_back(c);
    } else {
      absl::StrAppend(&out, "%",
                      absl::AsciiStrToUpper(absl::BytesToHexString(absl::string_view(&c, 1))));
    }
  }
  return out;
}

std::optional<AppRef> AppOfModel(absl::string_view model) {
  std::vector<absl::string_view> parts = absl::StrSplit(model, '/');
  if (parts.size() < 2 || !IsName(parts[0]) || !IsName(parts[1])) return std::nullopt;
  for (absl::string_view part : parts) {
    if (!IsName(part)) return std::nullopt;
  }
  return AppRef{std::string(parts[0]), std::string(parts[1]), ""};
}

std::string EncodeTaskId(const AppRef& ref) {
  return absl::StrCat(ref.owner, "/", ref.app, ":", ref.request_id);
}

std::optional<AppRef> DecodeTaskId(absl::string_view provider_task_id) {
  if (provider_task_id.size() > kMaxProviderTaskId) return std::nullopt;
  size_t colon = provider_task_id.find(':');
  if (colon == absl::string_view::npos) return std::nullopt;
  absl::string_view app_part = provider_task_id.substr(0, colon);
  absl::string_view id = provider_task_id.substr(colon + 1);
  std::vector<absl::string_view> parts = absl::StrSplit(app_part, '/');
  if (parts.size() != 2 || !IsName(parts[0]) || !IsName(parts[1]) || !IsName(id)) {
    return std::nullopt;
  }
  return AppRef{std::string(parts[0]), std::string(parts[1]), std::string(id)};
}

std::string RequestPath(const AppRef& ref, absl::string_view suffix) {
  return absl::StrCat("/", EscapeSegment(ref.owner), "/", EscapeSegment(ref.app), "/requests/",
                      EscapeSegment(ref.request_id), suffix);
}

std::optional<std::string> ParseSubmitAnswer(absl::string_view body) {
  std::optional<Json> json = ParseJson(body);
  if (!json.has_value()) return std::nullopt;
  std::optional<std::string> id = StringField(*json, "request_id");
  // Room for "<owner>/<app>:" in the stored id.
  if (!id.has_value() || !IsName(*id) || id->size() > 80) return std::nullopt;
  return id;
}

absl::StatusOr<QueueStatus> ParseStatusAnswer(absl::string_view body) {
  std::optional<Json> json = ParseJson(body);
  std::optional<std::string> status;
  if (json.has_value()) status = StringField(*json, "status");
  if (!status.has_value()) return absl::UnavailableError("fal status: unreadable answer");
  if (*status != "IN_QUEUE" && *status != "IN_PROGRESS" && *status != "COMPLETED") {
    return absl::UnavailableError(absl::StrCat("fal status: unknown status \"",
                                               absl::CHexEscape(status->substr(0, 40)), "\""));
  }
  QueueStatus out;
  out.status = *status;
  auto position = json->find("queue_position");
  if (position != json->end() && position->is_number_integer()) {
    int64_t p = position->get<int64_t>();
    if (p >= 0 && p < 1'000'000'000) out.queue_position = p;
  }
  return out;
}

PollResult PendingResult(const QueueStatus& status) {
  PollResult result;
  if (status.status == "IN_PROGRESS") {
    result.state = ProviderState::kRunning;
    result.status_text = "IN_PROGRESS";
    return result;
  }
  result.state = ProviderState::kPending;
  result.status_text = status.status;
  if (status.queue_position.has_value()) {
    absl::StrAppend(&result.status_text, " (position ", *status.queue_position, ")");
  }
  return result;
}

ProviderError ParseProviderError(const HttpResponse& response) {
  ProviderError error;
  error.type = std::string(absl::StripAsciiWhitespace(response.Header("x-fal-error-type")));
  std::optional<Json> json = ParseJson(response.body);
  if (json.has_value() && json->is_object()) {
    if (std::optional<std::string> t = StringField(*json, "error_type"); t.has_value()) {
      error.type = *t;
    }
    auto detail = json->find("detail");
    if (detail != json->end() && detail->is_string()) {
      error.message = detail->get<std::string>();
    } else if (detail != json->end() && detail->is_array()) {
      std::vector<std::string> parts;
      for (const Json& item : *detail) {
        std::optional<std::string> msg = StringField(item, "msg");
        if (!msg.has_value()) continue;
        std::string where;
        auto loc = item.find("loc");
        if (loc != item.end() && loc->is_array()) {
          std::vector<std::string> names;
          for (const Json& l : *loc) {
            if (l.is_string() && l.get<std::string>() != "body")
              names.push_back(l.get<std::string>());
          }
          where = absl::StrJoin(names, ".");
        }
        parts.push_back(where.empty() ? *msg : absl::StrCat(where, ": ", *msg));
        if (std::optional<std::string> t = StringField(item, "type");
            t.has_value() && error.type.empty()) {
          error.type = *t;
        }
      }
      error.message = absl::StrJoin(parts, "; ");
    } else if (std::optional<std::string> e = StringField(*json, "error"); e.has_value()) {
      error.message = *e;
    }
  }
  error.message = Bounded(std::move(error.message));
  if (error.type.size() > 64 || !std::all_of(error.type.begin(), error.type.end(), IsNameChar)) {
    error.type.clear();
  }
  return error;
}

absl::StatusOr<PollResult> ParseResultAnswer(const HttpResponse& response, absl::Time now) {
  const int code = response.status;
  if (Is2xx(code)) {
    std::optional<Json> json = ParseJson(response.body);
    std::optional<std::string> url;
    if (json.has_value() && json->is_object()) {
      auto video = json->find("video");
      if (video != json->end()) url = StringField(*video, "url");
    }
    if (!url.has_value() || url->empty()) {
      return WithHttpStatus(
          absl::UnavailableError(absl::StrCat("fal result: HTTP ", code, " without video.url")),
          code);
    }
    PollResult result;
    result.state = ProviderState::kSucceeded;
    result.status_text = "COMPLETED";
    result.progress = 1;
    result.output_urls.push_back(*url);
    return result;
  }
  const bool user_timeout =
      code == 504 && absl::EqualsIgnoreCase(response.Header("x-fal-request-timeout-type"), "user");
  if (code == 408 || code == 429 || (code >= 500 && !user_timeout)) {
    return StatusFromAnswer("result", response, now);
  }
  ProviderError error = ParseProviderError(response);
  PollResult result;
  result.state = ProviderState::kFailed;
  result.status_text = "COMPLETED";
  result.failure_message =
      error.message.empty() ? absl::StrCat("the request failed (HTTP ", code, ")") : error.message;
  result.failure_code = error.type.empty() ? absl::StrCat("HTTP_", code) : error.type;
  result.failure_retryable = absl::EqualsIgnoreCase(response.Header("x-fal-retryable"), "true") &&
                             !IsModeration(error.type);
  return result;
}

absl::Status StatusFromAnswer(absl::string_view op, const HttpResponse& response, absl::Time now) {
  const int code = response.status;
  const ProviderError error = ParseProviderError(response);
  std::string message = absl::StrCat("fal ", op, ": HTTP ", code);
  auto with_provider = [&](absl::string_view fallback) {
    absl::StrAppend(&message, ": ", error.message.empty() ? fallback : error.message);
    if (!error.type.empty()) absl::StrAppend(&message, " (", error.type, ")");
    return message;
  };
  absl::Status status;
  if (code == 400 || code == 422) {
    status = absl::InvalidArgumentError(with_provider("request refused"));
  } else if (code == 401) {
    LogCredentialsRejectedOnce();
    status =
        absl::UnauthenticatedError(absl::StrCat("fal ", op, ": HTTP 401: fal rejected the key"));
  } else if (code == 403) {
    status = absl::PermissionDeniedError(with_provider("forbidden"));
  } else if (code == 404) {
    status = absl::NotFoundError(with_provider("not found"));
  } else if (code == 408) {
    status = absl::UnavailableError(with_provider("request timeout"));
  } else if (code == 429) {
    status = absl::ResourceExhaustedError(with_provider("too many requests"));
  } else if (code == 504 &&
             absl::EqualsIgnoreCase(response.Header("x-fal-request-timeout-type"), "user")) {
    status = absl::FailedPreconditionError(with_provider("request timeout"));
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

int64_t DataUriLength(absl::string_view mime, int64_t bytes) {
  return static_cast<int64_t>(absl::StrCat("data:", mime, ";base64,").size()) +
         4 * ((bytes + 2) / 3);
}

std::string UploadFilename(const StartRequest& request) {
  absl::string_view name = request.image_filename;
  size_t slash = name.find_last_of("/\\");
  if (slash != absl::string_view::npos) name = name.substr(slash + 1);
  std::string clean;
  for (char c : name) {
    if (IsNameChar(c)) clean.push_back(c);
  }
  while (!clean.empty() && clean.front() == '.') clean.erase(clean.begin());
  if (clean.size() > 100) clean.resize(100);
  if (clean.empty()) clean = "image";
  const std::string ext = request.image_mime_type == "image/png"    ? ".png"
                          : request.image_mime_type == "image/jpeg" ? ".jpg"
                          : request.image_mime_type == "image/webp" ? ".webp"
                                                                    : "";
  std::string lower = absl::AsciiStrToLower(clean);
  if (!absl::EndsWith(lower, ext) && !(ext == ".jpg" && absl::EndsWith(lower, ".jpeg"))) {
    absl::StrAppend(&clean, ext);
  }
  return clean;
}

}  // namespace videotask::backends::fal_internal
