// Fuzzes the Replicate backend's handling of provider answers: the fuzz
// input is the HTTP status and body the provider sends to a create, a poll, a
// cancel and a file upload, and the body fed to the pure parsers. Every
// answer becomes a result or a status; none crashes, ids and statuses that
// come back are plausible, and the API token never appears in a status.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "backends/replicate/replicate_backend.h"
#include "backends/replicate/replicate_wire.h"
#include "common/clock.h"
#include "common/log.h"

namespace {

using videotask::backends::HttpRequest;
using videotask::backends::HttpResponse;
namespace wire = videotask::backends::replicate_internal;

const std::string& Token() {
  static const std::string* token = new std::string("r8_" + std::string(37, 'f'));
  return *token;
}

// Answers every request with the scripted status, body and Retry-After.
class ScriptedTransport final : public videotask::backends::HttpTransport {
 public:
  int status = 200;
  std::string body;
  std::string retry_after;
  absl::StatusOr<HttpResponse> Send(const HttpRequest&) override {
    HttpResponse response;
    response.status = status;
    response.body = body;
    if (!retry_after.empty()) response.headers.emplace_back("retry-after", retry_after);
    return response;
  }
  absl::StatusOr<HttpResponse> SendStreaming(const HttpRequest& request,
                                             const videotask::backends::BodySink& sink) override {
    absl::StatusOr<HttpResponse> response = Send(request);
    if (response.ok() && response->status / 100 == 2) {
      absl::Status written = sink(response->body);
      if (!written.ok()) return written;
      response->body.clear();
    }
    return response;
  }
};

void CheckStatus(const absl::Status& status) {
  if (absl::StrContains(status.message(), Token())) std::abort();
}

void CheckParsers(const std::string& body, absl::Time now) {
  absl::StatusOr<wire::Prediction> p = wire::ParsePrediction(body);
  if (p.ok()) {
    if (!wire::IsPlausiblePredictionId(p->id) || p->status.size() > 40) std::abort();
    videotask::backends::PollResult r = wire::ToPollResult(*p);
    if (r.progress < 0 || r.progress > 1) std::abort();
  }
  (void)wire::ParseFileUrl(body);
  (void)wire::ProviderMessage(body);
  (void)wire::FailureCode(body);
  HttpResponse answer;
  answer.status = 429;
  answer.body = body;
  std::optional<absl::Duration> delay = wire::ParseRetryAfter(answer, now);
  if (delay.has_value() && (*delay <= absl::ZeroDuration() || *delay > absl::Hours(24))) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  videotask::SetLogLevel("off");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static videotask::SystemClock* clock = new videotask::SystemClock();
  static ScriptedTransport* http = new ScriptedTransport();
  static videotask::backends::ReplicateBackend* backend = [] {
    static absl::BitGen* rng = new absl::BitGen();
    videotask::backends::BackendConfig config;
    config.name = "replicate";
    videotask::backends::BackendDeps deps{*clock, *rng, http};
    auto created = videotask::backends::ReplicateBackend::Create(
        config, {"http://127.0.0.1:9", Token()}, deps);
    if (!created.ok()) std::abort();
    return created->release();
  }();
  if (size < 2) return 0;
  // Byte 0: the HTTP status; byte 1: whether a Retry-After is sent, and which model.
  static constexpr int kStatuses[] = {200, 201, 204, 400, 401, 402, 404, 409, 422, 429, 500, 503};
  http->status = kStatuses[data[0] % (sizeof(kStatuses) / sizeof(kStatuses[0]))];
  http->retry_after = (data[1] & 1) ? std::string(reinterpret_cast<const char*>(data + 2),
                                                  std::min<size_t>(size - 2, 12))
                                    : "";
  http->body.assign(reinterpret_cast<const char*>(data + 2), size - 2);
  CheckParsers(http->body, clock->Now());

  static const char* kModels[] = {"kwaivgi/kling-v2.1", "minimax/hailuo-02", "google/veo-3-fast"};
  videotask::backends::StartRequest start;
  start.task_id = "01J0Z3YV6Q8W3C2M5N7P9R1T4X";
  start.model = kModels[(data[1] >> 1) % 3];
  start.image_uri = "https://images.invalid/a.png";
  start.prompt_text = "slow zoom";
  absl::StatusOr<std::string> id = backend->Start(start);
  if (!id.ok()) {
    CheckStatus(id.status());
  } else if (!wire::IsPlausiblePredictionId(*id)) {
    std::abort();
  }
  absl::StatusOr<videotask::backends::PollResult> poll = backend->Poll("prediction1");
  if (!poll.ok()) {
    CheckStatus(poll.status());
  } else if (poll->progress < 0 || poll->progress > 1 || poll->status_text.size() > 40) {
    std::abort();
  }
  CheckStatus(backend->Cancel("prediction1"));
  return 0;
}
