#include "backends/fal/fal_backend.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "backends/api/errors.h"
#include "backends/fal/fal_wire.h"
#include "backends/http/url_policy.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace videotask::backends {

using fal_internal::Annotate;
using fal_internal::AppOfModel;
using fal_internal::AppRef;
using fal_internal::DecodeTaskId;
using fal_internal::Dump;
using fal_internal::EncodeTaskId;
using fal_internal::Is2xx;
using fal_internal::Json;
using fal_internal::kDownloadTimeout;
using fal_internal::kMaxApiAnswerBytes;
using fal_internal::ParseJson;
using fal_internal::ParseResultAnswer;
using fal_internal::ParseRetryAfter;
using fal_internal::ParseStatusAnswer;
using fal_internal::ParseSubmitAnswer;
using fal_internal::PendingResult;
using fal_internal::QueueStatus;
using fal_internal::RequestPath;
using fal_internal::StatusFromAnswer;
using fal_internal::StringField;

namespace {

absl::Status NormalizeUrl(std::string& url, absl::string_view fallback, absl::string_view what) {
  if (url.empty()) url = std::string(fallback);
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (absl::Status allowed = CheckUrlAllowed(url); !allowed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("fal ", what, " refused: ", allowed.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<FalBackend>> FalBackend::Create(const BackendConfig& config,
                                                               FalOptions options,
                                                               const BackendDeps& deps) {
  if (options.api_key.empty()) {
    return absl::FailedPreconditionError("FAL_KEY is not set: the fal backend needs a fal.ai key");
  }
  if (deps.http == nullptr) {
    return absl::FailedPreconditionError("the fal backend needs an HTTP transport");
  }
  VT_RETURN_IF_ERROR(NormalizeUrl(options.base_url, kFalDefaultBaseUrl, "base URL"));
  VT_RETURN_IF_ERROR(NormalizeUrl(options.storage_url, kFalDefaultStorageUrl, "storage URL"));
  if (config.max_output_bytes <= 0 || config.max_image_bytes <= 0) {
    return absl::InvalidArgumentError("fal: max_image_bytes and max_output_bytes must be positive");
  }
  return std::unique_ptr<FalBackend>(new FalBackend(config, std::move(options), deps));
}

FalBackend::FalBackend(const BackendConfig& config, FalOptions options, const BackendDeps& deps)
    : config_(config),
      options_(std::move(options)),
      http_(deps.http),
      clock_(deps.clock),
      capabilities_(FalCapabilities(config.max_image_bytes)) {}

absl::Status FalBackend::Scrub(absl::Status status) const {
  if (status.ok() || !absl::StrContains(status.message(), options_.api_key)) return status;
  absl::Status out(status.code(),
                   absl::StrReplaceAll(status.message(), {{options_.api_key, "[redacted]"}}));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

HttpRequest FalBackend::ApiRequest(absl::string_view method, std::string url,
                                   std::string body) const {
  HttpRequest request;
  request.method = std::string(method);
  request.url = std::move(url);
  request.headers = {{"Authorization", absl::StrCat("Key ", options_.api_key)},
                     {"Accept", "application/json"}};
  if (!body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  request.body = std::move(body);
  request.max_response_bytes = kMaxApiAnswerBytes;
  return request;
}

absl::Status FalBackend::Validate(const StartRequest& request) const {
  return fal_internal::CheckFalRequest(capabilities_, request);
}

absl::StatusOr<std::string> FalBackend::Start(const StartRequest& request) {
  VT_RETURN_IF_ERROR(Validate(request));
  VT_ASSIGN_OR_RETURN(ResolvedOptions resolved,
                      ResolveAgainstCapabilities(capabilities_, kFalName, request));
  const ModelCapabilities* model = capabilities_.FindModel(resolved.model);
  std::optional<AppRef> ref = AppOfModel(resolved.model);
  if (model == nullptr || !ref.has_value()) {
    return absl::InternalError(absl::StrCat("fal: model ", resolved.model, " has no queue path"));
  }
  absl::StatusOr<std::string> image = ImageUrl(request);
  if (!image.ok()) return Scrub(image.status());
  VT_ASSIGN_OR_RETURN(Json body, fal_internal::CreateBody(*model, request, resolved, *image));

  absl::StatusOr<HttpResponse> answer = http_->Send(
      ApiRequest("POST", absl::StrCat(options_.base_url, "/", resolved.model), Dump(body)));
  if (!answer.ok()) {
    // Transport failures keep their "maybe sent" mark.
    return Scrub(Annotate(answer.status(), "fal submit"));
  }
  if (!Is2xx(answer->status)) {
    return Scrub(StatusFromAnswer("submit", *answer, clock_.Now()));
  }
  std::optional<std::string> id = ParseSubmitAnswer(answer->body);
  if (!id.has_value()) {
    // Answered with success but unreadable: the request may be queued.
    return MarkMaybeSent(WithHttpStatus(
        absl::UnavailableError(absl::StrCat("fal submit: unreadable answer (HTTP ", answer->status,
                                            "); the request may have been queued")),
        answer->status));
  }
  ref->request_id = *id;
  VT_LOG_INFO("fal: task {} queued as {} ({}, {}, {} s)", request.task_id, *id, resolved.model,
              resolved.ratio, resolved.duration_seconds);
  return EncodeTaskId(*ref);
}

absl::StatusOr<PollResult> FalBackend::Poll(absl::string_view provider_task_id) {
  absl::StatusOr<PollResult> result = PollInternal(provider_task_id);
  if (!result.ok()) return Scrub(result.status());
  return result;
}

absl::StatusOr<PollResult> FalBackend::PollInternal(absl::string_view provider_task_id) {
  std::optional<AppRef> ref = DecodeTaskId(provider_task_id);
  if (!ref.has_value()) {
    return absl::NotFoundError(
        "fal status: the provider task id is not <owner>/<app>:<request id>");
  }
  absl::StatusOr<HttpResponse> answer = http_->Send(
      ApiRequest("GET", absl::StrCat(options_.base_url, RequestPath(*ref, "/status")), ""));
  if (!answer.ok()) return Annotate(answer.status(), "fal status");
  if (!Is2xx(answer->status)) return StatusFromAnswer("status", *answer, clock_.Now());
  absl::StatusOr<QueueStatus> status = ParseStatusAnswer(answer->body);
  if (!status.ok()) return WithHttpStatus(status.status(), answer->status);
  if (status->status != "COMPLETED") return PendingResult(*status);

  absl::StatusOr<HttpResponse> result =
      http_->Send(ApiRequest("GET", absl::StrCat(options_.base_url, RequestPath(*ref, "")), ""));
  if (!result.ok()) return Annotate(result.status(), "fal result");
  return ParseResultAnswer(*result, clock_.Now());
}

absl::Status FalBackend::Cancel(absl::string_view provider_task_id) {
  std::optional<AppRef> ref = DecodeTaskId(provider_task_id);
  if (!ref.has_value()) return absl::OkStatus();  // nothing we could have queued
  absl::StatusOr<HttpResponse> answer = http_->Send(
      ApiRequest("PUT", absl::StrCat(options_.base_url, RequestPath(*ref, "/cancel")), ""));
  if (!answer.ok()) return Scrub(Annotate(answer.status(), "fal cancel"));
  if (Is2xx(answer->status) || answer->status == 404) return absl::OkStatus();
  if (answer->status == 400) {
    std::optional<Json> json = ParseJson(answer->body);
    if (json.has_value() && StringField(*json, "status") == "ALREADY_COMPLETED") {
      return absl::OkStatus();
    }
  }
  return Scrub(StatusFromAnswer("cancel", *answer, clock_.Now()));
}

absl::Status FalBackend::Download(const std::string& url, OutputSink& sink) {
  if (absl::Status allowed = CheckUrlAllowed(url); !allowed.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("fal output download refused: ", allowed.message()));
  }
  HttpRequest get;
  get.method = "GET";
  get.url = url;  // a public file URL: the key never goes to the file host
  get.timeout = kDownloadTimeout;
  get.max_response_bytes = config_.max_output_bytes;
  bool sink_failed = false;
  absl::StatusOr<HttpResponse> answer =
      http_->SendStreaming(get, [&sink, &sink_failed](absl::string_view chunk) {
        absl::Status status = sink.Write(chunk);
        if (!status.ok()) sink_failed = true;
        return status;
      });
  const std::string what = absl::StrCat("fal output download of ", RedactUrl(url));
  if (!answer.ok()) {
    if (answer.status().code() == absl::StatusCode::kResourceExhausted && !sink_failed) {
      return absl::FailedPreconditionError(absl::StrCat(
          what, ": the video is larger than max_output_bytes (", config_.max_output_bytes, ")"));
    }
    return Annotate(answer.status(), what);
  }
  const int code = answer->status;
  if (Is2xx(code)) return absl::OkStatus();
  // The file host's own error body is not passed on.
  std::string message = absl::StrCat(what, ": HTTP ", code);
  absl::Status status;
  if (code == 404 || code == 410) {
    status = absl::NotFoundError(absl::StrCat(message, " (the file has expired)"));
  } else if (code == 429) {
    status = absl::ResourceExhaustedError(message);
    if (std::optional<absl::Duration> d = ParseRetryAfter(*answer, clock_.Now()); d.has_value()) {
      status = WithRetryAfter(std::move(status), *d);
    }
  } else if (code == 408 || code >= 500) {
    status = absl::UnavailableError(message);
  } else {
    status = absl::FailedPreconditionError(message);
  }
  return WithHttpStatus(std::move(status), code);
}

absl::Status FalBackend::FetchOutput(absl::string_view provider_task_id,
                                     const std::vector<std::string>& output_urls,
                                     OutputSink& sink) {
  std::vector<std::string> urls = output_urls;
  if (urls.empty()) {
    absl::StatusOr<PollResult> poll = PollInternal(provider_task_id);
    if (!poll.ok()) return Scrub(poll.status());
    if (poll->state != ProviderState::kSucceeded || poll->output_urls.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("fal request ", provider_task_id, " is ",
                                                        poll->status_text, ": no output to fetch"));
    }
    urls = std::move(poll->output_urls);
  }
  return Scrub(Download(urls.front(), sink));
}

}  // namespace videotask::backends
