#include "backends/runway/runway_backend.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "backends/api/errors.h"
#include "backends/http/url_policy.h"
#include "backends/runway/runway_wire.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace videotask::backends {

using runway_internal::Annotate;
using runway_internal::CreateBody;
using runway_internal::Dump;
using runway_internal::EscapeSegment;
using runway_internal::Is2xx;
using runway_internal::IsPlausibleTaskId;
using runway_internal::Json;
using runway_internal::kDownloadTimeout;
using runway_internal::kMaxApiAnswerBytes;
using runway_internal::ParseJson;
using runway_internal::ParseRetryAfter;
using runway_internal::StateFromText;
using runway_internal::StatusFromAnswer;
using runway_internal::StringField;

absl::StatusOr<std::unique_ptr<RunwayBackend>> RunwayBackend::Create(const BackendConfig& config,
                                                                     RunwayOptions options,
                                                                     const BackendDeps& deps) {
  if (options.api_secret.empty()) {
    return absl::FailedPreconditionError(
        "RUNWAYML_API_SECRET is not set: the runway backend needs a RunwayML API key");
  }
  if (deps.http == nullptr) {
    return absl::FailedPreconditionError("the runway backend needs an HTTP transport");
  }
  std::string& base_url = options.base_url;
  if (base_url.empty()) base_url = kRunwayDefaultBaseUrl;
  while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
  if (absl::Status allowed = CheckUrlAllowed(base_url); !allowed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("runway base URL refused: ", allowed.message()));
  }
  if (config.max_output_bytes <= 0 || config.max_image_bytes <= 0) {
    return absl::InvalidArgumentError("runway: max_image_bytes and max_output_bytes must be positive");
  }
  return std::unique_ptr<RunwayBackend>(new RunwayBackend(config, std::move(options), deps));
}

RunwayBackend::RunwayBackend(const BackendConfig& config, RunwayOptions options,
                             const BackendDeps& deps)
    : config_(config),
      options_(std::move(options)),
      http_(deps.http),
      clock_(deps.clock),
      capabilities_(RunwayCapabilities(config.max_image_bytes)),
      rng_(deps.rng) {}

absl::Status RunwayBackend::Scrub(absl::Status status) const {
  if (status.ok() || options_.api_secret.empty() ||
      !absl::StrContains(status.message(), options_.api_secret)) {
    return status;
  }
  absl::Status out(status.code(),
                   absl::StrReplaceAll(status.message(), {{options_.api_secret, "[redacted]"}}));
  status.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

HttpRequest RunwayBackend::ApiRequest(absl::string_view method, absl::string_view path,
                                      std::string body) const {
  HttpRequest request;
  request.method = std::string(method);
  request.url = absl::StrCat(options_.base_url, path);
  request.headers = {{"Authorization", absl::StrCat("Bearer ", options_.api_secret)},
                     {"X-Runway-Version", kRunwayApiVersion},
                     {"Accept", "application/json"}};
  if (!body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  request.body = std::move(body);
  request.max_response_bytes = kMaxApiAnswerBytes;
  return request;
}

absl::StatusOr<std::string> RunwayBackend::Start(const StartRequest& request) {
  VT_ASSIGN_OR_RETURN(ResolvedOptions resolved,
                      ResolveAgainstCapabilities(capabilities_, kRunwayName, request));
  absl::StatusOr<std::string> image = PromptImage(request);
  if (!image.ok()) return Scrub(image.status());

  Json body = CreateBody(request, resolved, *image);
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
              resolved.model, resolved.ratio, resolved.duration_seconds);
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

}  // namespace videotask::backends
