// Fuzzes the RunwayML backend's handling of provider answers: the fuzz input
// is the HTTP status and body the provider sends to a create, a poll and a
// cancel. Every answer becomes a result or a status; none crashes, and the
// API secret never appears in a status message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "backends/runway/runway_backend.h"
#include "common/clock.h"
#include "common/log.h"

namespace {

using videotask::backends::HttpRequest;
using videotask::backends::HttpResponse;

const std::string& Secret() {
  static const std::string* secret = new std::string("key_" + std::string(128, 'f'));
  return *secret;
}

// Answers every request with the scripted status and body.
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
  if (absl::StrContains(status.message(), Secret())) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  videotask::SetLogLevel("off");  // a log line per input would be most of the time spent
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static videotask::SystemClock* clock = new videotask::SystemClock();
  static ScriptedTransport* http = new ScriptedTransport();
  static videotask::backends::RunwayBackend* backend = [] {
    static absl::BitGen* rng = new absl::BitGen();
    videotask::backends::BackendConfig config;
    config.name = "runway";
    videotask::backends::BackendDeps deps{*clock, *rng, http};
    auto created = videotask::backends::RunwayBackend::Create(
        config, {"http://127.0.0.1:9", Secret()}, deps);
    if (!created.ok()) std::abort();
    return created->release();
  }();
  if (size < 2) return 0;
  // Byte 0: status class and code; byte 1: whether a Retry-After is sent.
  static constexpr int kStatuses[] = {200, 201, 204, 400, 401, 404, 409, 429, 500, 502, 503, 504};
  http->status = kStatuses[data[0] % (sizeof(kStatuses) / sizeof(kStatuses[0]))];
  http->retry_after = (data[1] & 1) ? std::string(reinterpret_cast<const char*>(data + 2),
                                                  std::min<size_t>(size - 2, 12))
                                    : "";
  http->body.assign(reinterpret_cast<const char*>(data + 2), size - 2);

  videotask::backends::StartRequest start;
  start.task_id = "01J0Z3YV6Q8W3C2M5N7P9R1T4X";
  start.model = "gen4_turbo";
  start.image_uri = "https://images.invalid/a.png";
  start.prompt_text = "slow zoom";
  start.ratio = "1280:720";
  start.duration_seconds = 5;
  absl::StatusOr<std::string> id = backend->Start(start);
  if (!id.ok()) CheckStatus(id.status());
  absl::StatusOr<videotask::backends::PollResult> poll = backend->Poll("task-1");
  if (!poll.ok()) {
    CheckStatus(poll.status());
  } else if (poll->progress < 0 || poll->progress > 1) {
    std::abort();
  }
  CheckStatus(backend->Cancel("task-1"));
  return 0;
}
