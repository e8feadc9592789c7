// Fuzzes the fal backend's handling of provider answers: the fuzz input is
// an HTTP status, a header choice and a body, given to every answer parser
// and to a backend whose transport answers submit, status, result and
// cancel with it. Every answer becomes a result or a status; none crashes,
// the key never appears in a status, and a stored task id stays plausible.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "backends/fal/fal_backend.h"
#include "backends/fal/fal_wire.h"
#include "common/clock.h"
#include "common/log.h"

namespace {

using videotask::backends::HttpRequest;
using videotask::backends::HttpResponse;
namespace fal = videotask::backends::fal_internal;

const std::string& Key() {
  static const std::string* key = new std::string("fuzz-key-id:" + std::string(32, 'f'));
  return *key;
}

// Answers every request with the scripted answer.
class ScriptedTransport final : public videotask::backends::HttpTransport {
 public:
  HttpResponse answer;
  absl::StatusOr<HttpResponse> Send(const HttpRequest&) override { return answer; }
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
  if (absl::StrContains(status.message(), Key())) std::abort();
}

videotask::backends::FalBackend* Backend(ScriptedTransport* http) {
  static videotask::SystemClock* clock = new videotask::SystemClock();
  static absl::BitGen* rng = new absl::BitGen();
  videotask::backends::BackendConfig config;
  config.name = "fal";
  videotask::backends::BackendDeps deps{*clock, *rng, http};
  auto created = videotask::backends::FalBackend::Create(
      config, {"http://127.0.0.1:9", Key(), "http://127.0.0.1:9"}, deps);
  if (!created.ok()) std::abort();
  return created->release();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  videotask::SetLogLevel("off");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ScriptedTransport* http = new ScriptedTransport();
  static videotask::backends::FalBackend* backend = Backend(http);
  if (size < 2) return 0;
  static constexpr int kStatuses[] = {200, 202, 400, 401, 403, 404, 422,
                                      429, 499, 500, 502, 503, 504};
  HttpResponse& answer = http->answer;
  answer = HttpResponse();
  answer.status = kStatuses[data[0] % (sizeof(kStatuses) / sizeof(kStatuses[0]))];
  answer.body.assign(reinterpret_cast<const char*>(data + 2), size - 2);
  const std::string head(answer.body, 0, std::min<size_t>(answer.body.size(), 16));
  if (data[1] & 1) answer.headers.emplace_back("retry-after", head);
  if (data[1] & 2) answer.headers.emplace_back("x-fal-retryable", "true");
  if (data[1] & 4) answer.headers.emplace_back("x-fal-request-timeout-type", "user");
  if (data[1] & 8) answer.headers.emplace_back("x-fal-error-type", head);

  const absl::Time now = absl::Now();
  (void)fal::ParseSubmitAnswer(answer.body);
  (void)fal::DecodeTaskId(answer.body);
  if (auto status = fal::ParseStatusAnswer(answer.body); status.ok()) {
    (void)fal::PendingResult(*status);
  }
  (void)fal::ParseProviderError(answer);
  (void)fal::StatusFromAnswer("fuzz", answer, now);
  if (auto result = fal::ParseResultAnswer(answer, now); result.ok()) {
    if (result->failure_message.size() > 600) std::abort();
  }

  videotask::backends::StartRequest start;
  start.task_id = "01J0Z3YV6Q8W3C2M5N7P9R1T4X";
  start.model = videotask::backends::kFalVeo31Fast;
  start.image_uri = "https://images.invalid/a.png";
  start.prompt_text = "slow zoom";
  start.ratio = "16:9";
  start.duration_seconds = 6;
  absl::StatusOr<std::string> id = backend->Start(start);
  if (!id.ok()) {
    CheckStatus(id.status());
  } else if (id->size() > 128 || !fal::DecodeTaskId(*id).has_value()) {
    std::abort();
  }
  absl::StatusOr<videotask::backends::PollResult> poll = backend->Poll("fal-ai/veo3.1:0000-fuzz");
  if (!poll.ok()) CheckStatus(poll.status());
  CheckStatus(backend->Cancel("fal-ai/veo3.1:0000-fuzz"));
  return 0;
}
