// The steps: each makes one provider call on a worker, picks the
// transition for its outcome (transitions.h, error_policy.h), commits it and
// schedules what follows.
#include "server/engine/engine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"
#include "server/engine/transitions.h"

namespace videotask::engine {

absl::StatusOr<backends::StartRequest> Engine::BuildStartRequest(const Task& task) {
  std::string bytes;
  if (task.spec.image.source != ImageSource::kUri) {
    absl::StatusOr<std::string> image = store_.ReadImage(task.image_sha256);
    if (!image.ok()) {
      return absl::InternalError(absl::StrCat("the task's image is gone from the store: ",
                                              image.status().message()));
    }
    bytes = *std::move(image);
  }
  return MakeStartRequest(task, std::move(bytes));
}

namespace {

LogContext LogContextOf(const Task& task) {
  return LogContext{task.id, task.spec.backend, task.provider_task_id, task.request_id};
}

}  // namespace

void Engine::SubmitStep(Task task) {
  ScopedLogContext log_context(LogContextOf(task));
  const EngineBackend* b = FindBackend(task.spec.backend);
  if (Stopping() || b == nullptr) {
    // Claimed but never sent: back to the queue for the next process.
    GiveBackSpend(task);
    (void)Commit(ToRequeued(std::move(task)));
    return;
  }
  absl::StatusOr<backends::StartRequest> request = BuildStartRequest(task);
  if (!request.ok()) {
    GiveBackSpend(task);
    Fail(std::move(task), ErrorFromStatus(request.status(), false));
    return;
  }
  absl::StatusOr<std::string> provider_id =
      TimedCall(b->config.name, ProviderOp::kCreate, [&] { return b->backend->Start(*request); });
  if (provider_id.ok()) {
    OnCreated(task, *b, *provider_id);
  } else {
    OnCreateFailed(std::move(task), *b, provider_id.status());
  }
}

void Engine::OnCreated(const Task& task, const EngineBackend& b, const std::string& provider_id) {
  absl::Time now = clock_.Now();
  VT_LOG_DEBUG("task {} created at {} as {}", task.id, b.config.name, provider_id);
  absl::StatusOr<Task> stored = Commit(OnStarted(task, provider_id, now));
  if (stored.ok()) {
    ScheduleStep(task.id, Step::kPoll, now + PollDelay(b));
    return;
  }
  // Cancelled while we were creating it: record the provider id and cancel
  // it there too.
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Task> current = store_.Get(task.id);
    if (!current.ok() || current->state != TaskState::kCancelled) break;
    if (Commit(OnCreatedAfterCancel(*std::move(current), provider_id)).ok()) {
      ScheduleStep(task.id, Step::kProviderCancel, now);
      break;
    }
  }
  if (stored.status().code() != absl::StatusCode::kAborted) {
    VT_LOG_ERROR("task {} was created at {} as {} but could not be recorded", task.id,
                 b.config.name, provider_id);
  }
  Release(task.id);
}

void Engine::OnCreateFailed(Task task, const EngineBackend& b, const absl::Status& error) {
  ErrorDecision decision =
      DecideCreateError(error, task.attempt_count, options_.retry, b.config.name);
  if (decision.verdict == Verdict::kAmbiguous) {
    // It may have reached the provider: its cost stays spent.
    observer().OnAmbiguousCreate(b.config.name);
  } else {
    GiveBackSpend(task);  // refused or never sent
  }
  if (decision.verdict != Verdict::kRetry) {
    Fail(std::move(task), std::move(decision.error));
    return;
  }
  observer().OnRetry(b.config.name, ProviderOp::kCreate);
  absl::Time due = clock_.Now() + Backoff(task.attempt_count, error);
  std::string id = task.id;
  absl::StatusOr<Task> stored = Commit(ToRetry(std::move(task), std::move(decision.error), due));
  NoteQueuedAt(b.config.name, due, stored.ok());
  Release(id);
}

void Engine::PollStep(const std::string& task_id) {
  absl::StatusOr<Task> current = store_.Get(task_id);
  if (!current.ok()) {
    VT_LOG_WARN("poll of {}: reading the task failed: {}", task_id, current.status().ToString());
    Release(task_id);
    return;
  }
  Task task = *std::move(current);
  ScopedLogContext log_context(LogContextOf(task));
  if (task.state == TaskState::kDownloading) {
    ScheduleStep(task_id, Step::kFetch, clock_.Now());
    return;
  }
  if (task.state != TaskState::kRunning) {
    if (IsTerminal(task.state)) Release(task_id);
    return;
  }
  const EngineBackend* b = FindBackend(task.spec.backend);
  if (b == nullptr) return;
  if (!BeginPoll(task_id, b->config.poll_interval)) return;  // too soon: put off
  absl::StatusOr<backends::PollResult> polled = TimedCall(
      b->config.name, ProviderOp::kPoll, [&] { return b->backend->Poll(task.provider_task_id); });
  if (!polled.ok()) {
    RetryOrFail(std::move(task), polled.status(), Step::kPoll);
    return;
  }
  absl::Time now = clock_.Now();
  Task next = OnPolled(task, *polled, now);
  if (next.state == TaskState::kFailed) {
    TaskError error = next.error;
    Fail(std::move(next), std::move(error));
    return;
  }
  bool changed = PollChangedTask(task, next);
  TaskState state = next.state;
  if (changed) {
    absl::StatusOr<Task> stored = Commit(std::move(next));
    if (!stored.ok()) {
      if (state == TaskState::kCancelled) {
        Release(task_id);
      } else {
        OnConflict(task_id);
      }
      return;
    }
    // Downloaded right away on this worker, from the task just stored.
    if (state == TaskState::kDownloading) {
      FetchTask(*std::move(stored));
      return;
    }
  }
  switch (state) {
    case TaskState::kRunning:
      ScheduleStep(task_id, Step::kPoll, now + PollDelay(*b));
      return;
    case TaskState::kDownloading:
      ScheduleStep(task_id, Step::kFetch, now);
      return;
    default:  // cancelled at the provider
      Release(task_id);
      return;
  }
}

void Engine::FetchStep(const std::string& task_id) {
  absl::StatusOr<Task> current = store_.Get(task_id);
  if (!current.ok()) {
    Release(task_id);
    return;
  }
  if (current->state != TaskState::kDownloading) {
    if (IsTerminal(current->state)) Release(task_id);
    return;
  }
  FetchTask(*std::move(current));
}

void Engine::FetchTask(Task task) {
  const std::string task_id = task.id;
  ScopedLogContext log_context(LogContextOf(task));
  const EngineBackend* b = FindBackend(task.spec.backend);
  if (b == nullptr) return;
  if (absl::Status space = CheckOutputSpace(); !space.ok()) {
    WaitForDisk(std::move(task), space);
    return;
  }
  absl::StatusOr<std::unique_ptr<OutputFile>> file =
      output_writer_.Begin(task.target_filename_stub, task.id);
  absl::StatusOr<OutputInfo> info = absl::UnknownError("not fetched");
  if (!file.ok()) {
    info = file.status();
  } else if (absl::Status fetched = TimedCall(b->config.name, ProviderOp::kDownload,
                                              [&] {
                                                return b->backend->FetchOutput(
                                                    task.provider_task_id, task.output_urls,
                                                    **file);
                                              });
             !fetched.ok()) {
    info = fetched;
  } else {
    info = (*file)->Commit();
  }
  // Close (and remove) this attempt's temp file before a retry can be
  // scheduled: the retry reuses its name, and a late destructor would unlink
  // the retry's file.
  if (file.ok()) file->reset();
  if (!info.ok()) {
    // A full disk is waited out, never counted against the download.
    if (IsNoSpace(info.status())) {
      WaitForDisk(std::move(task), info.status());
      return;
    }
    RetryOrFail(std::move(task), info.status(), Step::kFetch);
    return;
  }
  if (!Commit(OnFetched(std::move(task), *info, clock_.Now())).ok()) {
    OnConflict(task_id);
    return;
  }
  Release(task_id);
}

void Engine::ProviderCancelStep(const std::string& task_id) {
  absl::StatusOr<Task> current = store_.Get(task_id);
  if (!current.ok() || !current->provider_cancel_pending || current->provider_task_id.empty()) {
    return;
  }
  ScopedLogContext log_context(LogContextOf(*current));
  const EngineBackend* b = FindBackend(current->spec.backend);
  if (b == nullptr) return;
  absl::Status cancelled = TimedCall(b->config.name, ProviderOp::kCancel,
                                     [&] { return b->backend->Cancel(current->provider_task_id); });
  if (ShouldRetryProviderCancel(cancelled, current->attempt_count + 1, options_.retry)) {
    observer().OnRetry(b->config.name, ProviderOp::kCancel);
    Task next = ToProviderCancelRetry(*std::move(current));
    absl::Time due = clock_.Now() + Backoff(next.attempt_count, cancelled);
    if (Commit(std::move(next)).ok()) ScheduleStep(task_id, Step::kProviderCancel, due);
    return;
  }
  if (!cancelled.ok() && cancelled.code() != absl::StatusCode::kNotFound) {
    VT_LOG_WARN("cancelling task {} at {} failed: {}", task_id, b->config.name,
                cancelled.ToString());
  }
  (void)Commit(OnProviderCancelDone(*std::move(current)));
}

void Engine::RetryOrFail(Task task, const absl::Status& error, Step step) {
  int attempts = task.attempt_count + 1;
  ErrorDecision decision = DecideStepError(error, attempts, options_.retry,
                                           step == Step::kFetch ? kErrDownloadFailed : "");
  if (decision.verdict != Verdict::kRetry) {
    Fail(std::move(task), std::move(decision.error));
    return;
  }
  absl::Duration delay = Backoff(attempts, error);
  observer().OnRetry(task.spec.backend,
                     step == Step::kFetch ? ProviderOp::kDownload : ProviderOp::kPoll);
  if (step == Step::kPoll) {
    const EngineBackend* b = FindBackend(task.spec.backend);
    if (b != nullptr) delay = std::max(delay, b->config.poll_interval);
  }
  absl::Time due = clock_.Now() + delay;
  std::string id = task.id;
  if (!Commit(ToStepRetry(std::move(task), std::move(decision.error), due)).ok()) {
    OnConflict(id);
    return;
  }
  ScheduleStep(id, step, due);
}

void Engine::Fail(Task task, TaskError error) {
  std::string id = task.id;
  VT_LOG_INFO("task {} failed: {}: {}", id, error.code, error.message);
  if (!Commit(OnFailed(std::move(task), std::move(error), clock_.Now())).ok()) OnConflict(id);
  Release(id);
}

}  // namespace videotask::engine
