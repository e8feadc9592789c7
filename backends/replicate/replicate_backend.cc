#include "backends/replicate/replicate_backend.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "backends/api/errors.h"
#include "backends/http/url_policy.h"
#include "backends/replicate/replicate_wire.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace videotask::backends {

using replicate_internal::Annotate;
using replicate_internal::CreateBody;
using replicate_internal::CreatePath;
using replicate_internal::Dump;
using replicate_internal::EscapeSegment;
using replicate_internal::Is2xx;
using replicate_internal::IsReplicateDeliveryUrl;
using replicate_internal::Json;
using replicate_internal::kDownloadTimeout;
using replicate_internal::kMaxApiAnswerBytes;
using replicate_internal::ParsePrediction;
using replicate_internal::ParseRetryAfter;
using replicate_internal::Prediction;
using replicate_internal::StatusFromAnswer;
using replicate_internal::ToPollResult;

absl::StatusOr<std::unique_ptr<ReplicateBackend>> ReplicateBackend::Create(
    const BackendConfig& config, ReplicateOptions options, const BackendDeps& deps) {
  if (options.api_token.empty()) {
    return absl::FailedPreconditionError(
        "REPLICATE_API_TOKEN is not set: the replicate backend needs a Replicate API token");
  }
  if (deps.http == nullptr) {
    return absl::FailedPreconditionError("the replicate backend needs an HTTP transport");
  }
  std::string& base_url = options.base_url;
  if (base_url.empty()) base_url = kReplicateDefaultBaseUrl;
  while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
  if (absl::Status allowed = CheckUrlAllowed(base_url); !allowed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("replicate base URL refused: ", allowed.message()));
  }
  if (config.max_output_bytes <= 0 || config.max_image_bytes <= 0) {
    return absl::InvalidArgumentError(
        "replicate: max_image_bytes and max_output_bytes must be positive");
  }
  return std::unique_ptr<ReplicateBackend>(
      new ReplicateBackend(config, std::move(options), deps));
}

ReplicateBackend::ReplicateBackend(const BackendConfig& config, ReplicateOptions options,
                                   const BackendDeps& deps)
    : config_(config),
      options_(std::move(options)),
      http_(deps.http),
      clock_(deps.clock),
      capabilities_(ReplicateCapabilities(config.max_image_bytes)),
      rng_(deps.rng) {}

absl::Status ReplicateBackend::Scrub(absl::Status status) const {
  if (status.ok() || options_.api_token.empty() ||
      !absl::StrContains(status.message(), options_.api_token)) {
    return status;
  }
  absl::Status out(status.code(),
                   absl::StrReplaceAll(status.message(), {{options_.api_token, "[redacted]"}}));
  status.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

HttpRequest ReplicateBackend::ApiRequest(absl::string_view method, absl::string_view path,
                                         std::string body) const {
  HttpRequest request;
  request.method = std::string(method);
  request.url = absl::StrCat(options_.base_url, path);
  request.headers = {{"Authorization", absl::StrCat("Bearer ", options_.api_token)},
                     {"Accept", "application/json"}};
  if (!body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  request.body = std::move(body);
  request.max_response_bytes = kMaxApiAnswerBytes;
  return request;
}

absl::Status ReplicateBackend::Validate(const StartRequest& request) const {
  const ReplicateModel* model =
      FindReplicateModel(request.model.empty() ? capabilities_.default_model : request.model);
  if (model == nullptr) return absl::OkStatus();  // the capability checks name the models
  if (request.seed.has_value() && model->seed_input.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.seed is not taken by model ", model->caps.name, "; leave it unset"));
  }
  if (model->caps.name == "minimax/hailuo-02" && request.duration_seconds == 10) {
    auto resolution = request.model_options.find("resolution");
    if (resolution == request.model_options.end() || resolution->second != "768p") {
      return absl::InvalidArgumentError(
          "spec.duration_seconds 10 is offered by model minimax/hailuo-02 only at 768p: set "
          "spec.model_options.resolution=768p or use 6 s");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReplicateBackend::Start(const StartRequest& request) {
  absl::StatusOr<std::string> id = StartInternal(request);
  if (!id.ok()) return Scrub(id.status());
  return id;
}

absl::StatusOr<std::string> ReplicateBackend::StartInternal(const StartRequest& request) {
  VT_ASSIGN_OR_RETURN(ResolvedOptions resolved,
                      ResolveAgainstCapabilities(capabilities_, kReplicateName, request));
  VT_RETURN_IF_ERROR(Validate(request));
  const ReplicateModel* model = FindReplicateModel(resolved.model);
  std::optional<std::string> path = CreatePath(resolved.model);
  if (model == nullptr || !path.has_value()) {
    return absl::InternalError(absl::StrCat("replicate: no input table for ", resolved.model));
  }
  VT_ASSIGN_OR_RETURN(std::string image, ImageInput(request));
  VT_ASSIGN_OR_RETURN(Json body, CreateBody(request, resolved, *model, image));

  absl::StatusOr<HttpResponse> answer = http_->Send(ApiRequest("POST", *path, Dump(body)));
  if (!answer.ok()) {
    // Transport failures keep their "maybe sent" mark.
    return Annotate(answer.status(), "Replicate create prediction");
  }
  if (!Is2xx(answer->status)) {
    return StatusFromAnswer("create prediction", *answer, clock_.Now());
  }
  absl::StatusOr<Prediction> prediction = ParsePrediction(answer->body);
  if (!prediction.ok()) {
    // Answered with success but unreadable: the prediction may exist.
    return MarkMaybeSent(WithHttpStatus(
        absl::UnavailableError(absl::StrCat(
            "Replicate create prediction: unreadable answer (HTTP ", answer->status,
            "); the prediction may have been created")),
        answer->status));
  }
  VT_LOG_INFO("replicate: task {} created prediction {} ({}, {}, {} s)", request.task_id,
              prediction->id, resolved.model, resolved.ratio, resolved.duration_seconds);
  return prediction->id;
}

absl::StatusOr<PollResult> ReplicateBackend::Poll(absl::string_view provider_task_id) {
  absl::StatusOr<PollResult> result = PollInternal(provider_task_id);
  if (!result.ok()) return Scrub(result.status());
  return result;
}

absl::StatusOr<PollResult> ReplicateBackend::PollInternal(absl::string_view provider_task_id) {
  if (provider_task_id.empty()) {
    return absl::NotFoundError("Replicate get prediction: empty prediction id");
  }
  absl::StatusOr<HttpResponse> answer = http_->Send(
      ApiRequest("GET", absl::StrCat("/v1/predictions/", EscapeSegment(provider_task_id)), ""));
  if (!answer.ok()) return Annotate(answer.status(), "Replicate get prediction");
  if (!Is2xx(answer->status)) return StatusFromAnswer("get prediction", *answer, clock_.Now());
  absl::StatusOr<Prediction> prediction = ParsePrediction(answer->body);
  if (!prediction.ok() || prediction->id != provider_task_id) {
    return absl::UnavailableError(
        absl::StrCat("Replicate get prediction: unreadable answer (HTTP ", answer->status, ")"));
  }
  if (!prediction->state.has_value()) {
    VT_LOG_WARN("replicate: prediction {} has status \"{}\", unknown here; still waiting",
                prediction->id, prediction->status);
  }
  return ToPollResult(*prediction);
}

absl::Status ReplicateBackend::Cancel(absl::string_view provider_task_id) {
  if (provider_task_id.empty()) return absl::OkStatus();
  absl::StatusOr<HttpResponse> answer = http_->Send(ApiRequest(
      "POST", absl::StrCat("/v1/predictions/", EscapeSegment(provider_task_id), "/cancel"), ""));
  if (!answer.ok()) return Scrub(Annotate(answer.status(), "Replicate cancel prediction"));
  if (Is2xx(answer->status) || answer->status == 404) return absl::OkStatus();
  return Scrub(StatusFromAnswer("cancel prediction", *answer, clock_.Now()));
}

absl::Status ReplicateBackend::Download(const std::string& url, OutputSink& sink,
                                        bool* retry_with_fresh_url) {
  *retry_with_fresh_url = false;
  absl::Status allowed = CheckUrlAllowed(url);
  if (allowed.ok() && !IsReplicateDeliveryUrl(url) && !IsLoopbackUrl(url)) {
    allowed = absl::InvalidArgumentError("outputs come only from replicate.delivery hosts");
  }
  if (!allowed.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("Replicate output download of ",
                                                      RedactUrl(url), " refused: ",
                                                      allowed.message()));
  }
  HttpRequest get;
  get.method = "GET";
  get.url = url;  // a delivery URL: the API token does not go there
  get.timeout = kDownloadTimeout;
  get.max_response_bytes = config_.max_output_bytes;
  bool sink_failed = false;
  absl::StatusOr<HttpResponse> answer =
      http_->SendStreaming(get, [&sink, &sink_failed](absl::string_view chunk) {
        absl::Status status = sink.Write(chunk);
        if (!status.ok()) sink_failed = true;
        return status;
      });
  const std::string what = absl::StrCat("Replicate output download of ", RedactUrl(url));
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

absl::StatusOr<std::vector<std::string>> ReplicateBackend::FreshOutputUrls(
    absl::string_view provider_task_id) {
  absl::StatusOr<HttpResponse> answer = http_->Send(
      ApiRequest("GET", absl::StrCat("/v1/predictions/", EscapeSegment(provider_task_id)), ""));
  if (!answer.ok()) return Annotate(answer.status(), "Replicate get prediction");
  if (!Is2xx(answer->status)) return StatusFromAnswer("get prediction", *answer, clock_.Now());
  absl::StatusOr<Prediction> prediction = ParsePrediction(answer->body);
  if (!prediction.ok()) {
    return absl::UnavailableError(
        absl::StrCat("Replicate get prediction: unreadable answer (HTTP ", answer->status, ")"));
  }
  if (prediction->status != "succeeded") {
    return absl::FailedPreconditionError(absl::StrCat("Replicate prediction ", prediction->id,
                                                      " is ", prediction->status,
                                                      ", not succeeded: no output to fetch"));
  }
  if (prediction->data_removed || prediction->output_urls.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Replicate prediction ", prediction->id,
        " lists no output any more (Replicate deletes API outputs an hour after the end)"));
  }
  return prediction->output_urls;
}

absl::Status ReplicateBackend::FetchOutput(absl::string_view provider_task_id,
                                           const std::vector<std::string>& output_urls,
                                           OutputSink& sink) {
  std::vector<std::string> urls = output_urls;
  bool refreshed = false;
  if (urls.empty()) {
    absl::StatusOr<std::vector<std::string>> fresh = FreshOutputUrls(provider_task_id);
    if (!fresh.ok()) return Scrub(fresh.status());
    urls = *std::move(fresh);
    refreshed = true;
  }
  while (true) {
    bool stale = false;
    absl::Status status = Download(urls.front(), sink, &stale);
    if (status.ok() || !stale || refreshed) return Scrub(status);
    VT_LOG_INFO("replicate: output URL of {} answered {}; asking for it again",
                std::string(provider_task_id), HttpStatus(status).value_or(0));
    absl::StatusOr<std::vector<std::string>> fresh = FreshOutputUrls(provider_task_id);
    if (!fresh.ok()) return Scrub(fresh.status());
    urls = *std::move(fresh);
    refreshed = true;
  }
}

}  // namespace videotask::backends
