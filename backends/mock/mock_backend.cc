#include "backends/mock/mock_backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "backends/api/errors.h"
#include "backends/mock/mock_video.h"
#include "common/status_macros.h"
#include "common/text.h"

namespace videotask::backends {
namespace {

constexpr char kOutcome[] = "mock.outcome";
constexpr char kLatency[] = "mock.latency_ms";
constexpr char kSteps[] = "mock.progress_steps";
constexpr char kFailureCode[] = "mock.failure_code";
constexpr char kStartErrors[] = "mock.start_errors";
constexpr char kStartError[] = "mock.start_error";
constexpr char kPollErrors[] = "mock.poll_errors";
constexpr char kFetchErrors[] = "mock.fetch_errors";
constexpr size_t kFetchChunk = 64 << 10;

std::string LabelField(absl::string_view key) { return absl::StrCat("spec.labels[\"", key, "\"]"); }

std::string Label(const std::map<std::string, std::string>& labels, const char* key,
                  absl::string_view fallback) {
  auto it = labels.find(key);
  return it == labels.end() ? std::string(fallback) : it->second;
}

absl::StatusOr<int64_t> IntLabel(const std::map<std::string, std::string>& labels,
                                 const char* key, int64_t max) {
  auto it = labels.find(key);
  if (it == labels.end()) return 0;
  int64_t value = 0;
  if (!absl::SimpleAtoi(it->second, &value) || value < 0 || value > max) {
    return absl::InvalidArgumentError(absl::StrCat(LabelField(key), " is ", QuotedForError(it->second),
                                                   "; allowed: a whole number 0..", max));
  }
  return value;
}

// What a mock provider task does, decoded from its id.
struct Script {
  std::string task_id;
  std::string outcome;
  int64_t latency_ms = 0;
  int64_t steps = 0;
  int64_t created_ms = 0;
  int64_t poll_errors = 0;
  int64_t fetch_errors = 0;
  std::string failure_code;
};

std::string EncodeScript(const Script& s) {
  return absl::StrJoin({std::string("mock"), s.task_id, s.outcome, absl::StrCat(s.latency_ms),
                        absl::StrCat(s.steps), absl::StrCat(s.created_ms),
                        absl::StrCat(s.poll_errors), absl::StrCat(s.fetch_errors), s.failure_code},
                       "~");
}

absl::StatusOr<Script> DecodeScript(absl::string_view id) {
  std::vector<std::string> parts = absl::StrSplit(id, '~');
  // A create whose answer was lost ("~lostN") made a real task: it can be
  // adopted and followed like any other.
  if (parts.size() == 10 && absl::StartsWith(parts[9], "lost")) parts.pop_back();
  Script s;
  if (parts.size() != 9 || parts[0] != "mock" || !absl::SimpleAtoi(parts[3], &s.latency_ms) ||
      !absl::SimpleAtoi(parts[4], &s.steps) || !absl::SimpleAtoi(parts[5], &s.created_ms) ||
      !absl::SimpleAtoi(parts[6], &s.poll_errors) || !absl::SimpleAtoi(parts[7], &s.fetch_errors)) {
    return absl::NotFoundError(absl::StrCat("mock provider has no task \"", id, "\""));
  }
  s.task_id = parts[1];
  s.outcome = parts[2];
  s.failure_code = parts[8];
  return s;
}

bool IsCodeChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_';
}

}  // namespace

MockBackend::MockBackend(const BackendConfig& config, const Clock& clock, MockOptions options)
    : clock_(clock) {
  capabilities_.default_model = "gen4_turbo";
  ModelCapabilities model;
  model.name = "gen4_turbo";
  model.ratios = Gen4Ratios();
  model.ratio_aliases = Gen4RatioAliases();
  model.default_ratio = "1280:720";
  for (int d = 2; d <= 10; ++d) model.durations.push_back(d);
  model.default_duration_seconds = 4;
  model.max_prompt_utf16 = 1000;
  model.usd_per_second = options.usd_per_second;
  capabilities_.models.push_back(model);
  capabilities_.max_image_bytes = config.max_image_bytes;
  capabilities_.image_mime_types = {"image/png", "image/jpeg", "image/webp"};
  capabilities_.accepts_https_uri = true;
  capabilities_.public_figure_thresholds = {"auto", "low"};
  if (!options.ledger_path.empty()) {
    ledger_fd_ = ::open(options.ledger_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
}

MockBackend::~MockBackend() {
  if (ledger_fd_ >= 0) ::close(ledger_fd_);
}

absl::Status MockBackend::Validate(const StartRequest& request) const {
  const auto& labels = request.labels;
  std::string outcome = Label(labels, kOutcome, "succeed");
  if (outcome != "succeed" && outcome != "fail" && outcome != "throttle_then_succeed") {
    return absl::InvalidArgumentError(absl::StrCat(
        LabelField(kOutcome), " is ", QuotedForError(outcome), "; allowed: succeed, fail, throttle_then_succeed"));
  }
  std::string start_error = Label(labels, kStartError, "unavailable");
  if (start_error != "unavailable" && start_error != "ambiguous" && start_error != "invalid") {
    return absl::InvalidArgumentError(absl::StrCat(LabelField(kStartError), " is ", QuotedForError(start_error),
                                                   "; allowed: unavailable, ambiguous, invalid"));
  }
  std::string code = Label(labels, kFailureCode, "INTERNAL.BAD_OUTPUT");
  if (code.empty() || code.size() > 64 || !std::all_of(code.begin(), code.end(), IsCodeChar)) {
    return absl::InvalidArgumentError(absl::StrCat(
        LabelField(kFailureCode), " is ", QuotedForError(code), "; allowed: 1..64 characters of [A-Za-z0-9._]"));
  }
  VT_RETURN_IF_ERROR(IntLabel(labels, kLatency, 3'600'000).status());
  VT_RETURN_IF_ERROR(IntLabel(labels, kSteps, 1000).status());
  VT_RETURN_IF_ERROR(IntLabel(labels, kStartErrors, 100).status());
  VT_RETURN_IF_ERROR(IntLabel(labels, kPollErrors, 100).status());
  VT_RETURN_IF_ERROR(IntLabel(labels, kFetchErrors, 100).status());
  return absl::OkStatus();
}

absl::Status MockBackend::RecordCreate(absl::string_view task_id, absl::string_view provider_id) {
  ++creates_[std::string(task_id)];
  ++total_creates_;
  if (ledger_fd_ < 0) return absl::OkStatus();
  std::string line = absl::StrCat(task_id, " ", provider_id, "\n");
  if (::write(ledger_fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
      ::fdatasync(ledger_fd_) != 0) {
    return absl::InternalError(absl::StrCat("mock ledger write failed, errno ", errno));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MockBackend::Start(const StartRequest& request) {
  VT_RETURN_IF_ERROR(Validate(request));
  const auto& labels = request.labels;
  VT_ASSIGN_OR_RETURN(int64_t start_errors, IntLabel(labels, kStartErrors, 100));
  Script script;
  script.task_id = request.task_id;
  script.outcome = Label(labels, kOutcome, "succeed");
  VT_ASSIGN_OR_RETURN(script.latency_ms, IntLabel(labels, kLatency, 3'600'000));
  VT_ASSIGN_OR_RETURN(script.steps, IntLabel(labels, kSteps, 1000));
  VT_ASSIGN_OR_RETURN(script.poll_errors, IntLabel(labels, kPollErrors, 100));
  VT_ASSIGN_OR_RETURN(script.fetch_errors, IntLabel(labels, kFetchErrors, 100));
  script.failure_code = Label(labels, kFailureCode, "INTERNAL.BAD_OUTPUT");
  script.created_ms = absl::ToUnixMillis(clock_.Now());

  absl::MutexLock lock(&mu_);
  // Attempts are counted only when some are scripted to fail.
  int attempt = start_errors > 0 ? ++start_attempts_[request.task_id] : 1;
  std::string provider_id = EncodeScript(script);
  if (attempt <= start_errors) {
    std::string kind = Label(labels, kStartError, "unavailable");
    if (kind == "invalid") {
      return WithHttpStatus(absl::InvalidArgumentError("mock provider refused the request (scripted)"), 400);
    }
    if (kind == "ambiguous") {
      // The provider did create the task; its answer was lost.
      absl::StrAppend(&provider_id, "~lost", ++next_serial_);
      VT_RETURN_IF_ERROR(RecordCreate(request.task_id, provider_id));
      return MarkMaybeSent(absl::DeadlineExceededError("mock provider answer lost (scripted)"));
    }
    return WithHttpStatus(absl::UnavailableError("mock provider unavailable (scripted)"), 503);
  }
  VT_RETURN_IF_ERROR(RecordCreate(request.task_id, provider_id));
  return provider_id;
}

absl::StatusOr<PollResult> MockBackend::Poll(absl::string_view provider_task_id) {
  VT_ASSIGN_OR_RETURN(Script script, DecodeScript(provider_task_id));
  int polls;
  {
    absl::MutexLock lock(&mu_);
    if (cancels_.count(std::string(provider_task_id)) != 0) {
      PollResult cancelled;
      cancelled.state = ProviderState::kCancelled;
      cancelled.status_text = "CANCELLED";
      return cancelled;
    }
    // Counted only when the script depends on the count.
    const bool counted = script.poll_errors > 0 || script.steps > 0 ||
                         script.outcome == "throttle_then_succeed";
    polls = counted ? ++polls_[std::string(provider_task_id)] : 1;
  }
  if (polls <= script.poll_errors) {
    return WithHttpStatus(absl::UnavailableError("mock provider poll failed (scripted)"), 502);
  }
  int64_t elapsed_ms = absl::ToUnixMillis(clock_.Now()) - script.created_ms;
  int64_t running_polls = polls - script.poll_errors;
  bool done = elapsed_ms >= script.latency_ms && running_polls > script.steps;
  PollResult result;
  if (!done) {
    float by_time = script.latency_ms > 0 ? static_cast<float>(elapsed_ms) / script.latency_ms : 1.0f;
    float by_steps = script.steps > 0 ? static_cast<float>(running_polls - 1) / script.steps : 1.0f;
    result.progress = std::clamp(std::min(by_time, by_steps), 0.0f, 0.99f);
    bool throttled = script.outcome == "throttle_then_succeed" &&
                     (running_polls == 1 || elapsed_ms * 2 < script.latency_ms);
    result.state = throttled ? ProviderState::kThrottled : ProviderState::kRunning;
    result.status_text = throttled ? "THROTTLED" : "RUNNING";
    if (throttled) result.progress = 0;
    return result;
  }
  if (script.outcome == "fail") {
    result.state = ProviderState::kFailed;
    result.status_text = "FAILED";
    result.failure_code = script.failure_code;
    result.failure_message = absl::StrCat("mock provider failed the task (", script.failure_code, ")");
    return result;
  }
  result.state = ProviderState::kSucceeded;
  result.status_text = "SUCCEEDED";
  result.progress = 1;
  result.output_urls = {absl::StrCat("mock://output/", provider_task_id, ".mp4")};
  return result;
}

absl::Status MockBackend::Cancel(absl::string_view provider_task_id) {
  VT_RETURN_IF_ERROR(DecodeScript(provider_task_id).status());
  absl::MutexLock lock(&mu_);
  ++cancels_[std::string(provider_task_id)];
  return absl::OkStatus();
}

absl::Status MockBackend::FetchOutput(absl::string_view provider_task_id,
                                      const std::vector<std::string>& output_urls,
                                      OutputSink& sink) {
  VT_ASSIGN_OR_RETURN(Script script, DecodeScript(provider_task_id));
  if (script.fetch_errors > 0) {
    absl::MutexLock lock(&mu_);
    int fetches = ++fetches_[std::string(provider_task_id)];
    if (fetches <= script.fetch_errors) {
      return absl::UnavailableError("mock output download failed (scripted)");
    }
  }
  absl::string_view video = MockVideo();
  for (size_t offset = 0; offset < video.size(); offset += kFetchChunk) {
    VT_RETURN_IF_ERROR(sink.Write(video.substr(offset, kFetchChunk)));
  }
  return absl::OkStatus();
}

int MockBackend::CreateCount(absl::string_view task_id) const {
  absl::MutexLock lock(&mu_);
  auto it = creates_.find(std::string(task_id));
  return it == creates_.end() ? 0 : it->second;
}

int MockBackend::TotalCreates() const {
  absl::MutexLock lock(&mu_);
  return total_creates_;
}

int MockBackend::CancelCount(absl::string_view provider_task_id) const {
  absl::MutexLock lock(&mu_);
  auto it = cancels_.find(std::string(provider_task_id));
  return it == cancels_.end() ? 0 : it->second;
}

}  // namespace videotask::backends
