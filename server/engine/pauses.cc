// Paused backends: an operator holds a provider through an outage. The
// pause lives in the store (it survives restarts and holds for every
// process sharing the store); each engine reads it again every
// pause_refresh and claims nothing for a paused backend. Tasks already at
// the provider are still polled, downloaded and cancelled.
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "server/engine/engine.h"

namespace videotask::engine {

absl::Status Engine::CheckBackendHere(absl::string_view backend) const {
  if (FindBackend(backend) != nullptr) return absl::OkStatus();
  std::vector<std::string> names;
  for (const EngineBackend& b : backends_) names.push_back(b.config.name);
  return absl::NotFoundError(absl::StrCat("backend \"", backend,
                                          "\" is not enabled on this server; enabled: ",
                                          absl::StrJoin(names, ", ")));
}

absl::StatusOr<store::BackendPause> Engine::Pause(absl::string_view backend, std::string reason,
                                                  std::string caller) {
  VT_RETURN_IF_ERROR(CheckBackendHere(backend));
  store::BackendPause pause;
  pause.backend = std::string(backend);
  pause.reason = std::move(reason);
  pause.caller = std::move(caller);
  pause.since = clock_.Now();
  VT_ASSIGN_OR_RETURN(store::BackendPause stored, store_.PauseBackend(pause));
  VT_LOG_INFO("backend {} paused by {}: {}", stored.backend, stored.caller, stored.reason);
  absl::MutexLock lock(&mu_);
  pauses_[stored.backend] = stored;
  return stored;
}

absl::Status Engine::Resume(absl::string_view backend) {
  VT_RETURN_IF_ERROR(CheckBackendHere(backend));
  VT_ASSIGN_OR_RETURN(bool was_paused, store_.ResumeBackend(backend));
  if (was_paused) VT_LOG_INFO("backend {} resumed", backend);
  absl::MutexLock lock(&mu_);
  pauses_.erase(std::string(backend));
  auto it = backend_state_.find(std::string(backend));
  if (it != backend_state_.end()) it->second.maybe_queued = true;
  kicked_ = true;
  return absl::OkStatus();
}

std::optional<store::BackendPause> Engine::PauseOf(absl::string_view backend) const {
  absl::MutexLock lock(&mu_);
  auto it = pauses_.find(std::string(backend));
  if (it == pauses_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::vector<store::BackendPause>> Engine::ListPauses() {
  VT_ASSIGN_OR_RETURN(std::vector<store::BackendPause> pauses, store_.ListBackendPauses());
  absl::MutexLock lock(&mu_);
  SetPausesLocked(pauses);
  return pauses;
}

void Engine::RefreshPauses(absl::Time now) {
  {
    absl::MutexLock lock(&mu_);
    if (now < next_pause_refresh_) return;
    next_pause_refresh_ = now + options_.pause_refresh;
  }
  absl::StatusOr<std::vector<store::BackendPause>> pauses = store_.ListBackendPauses();
  if (!pauses.ok()) {
    // The last known pauses hold until the store answers again.
    VT_LOG_WARN("reading the paused backends failed: {}", pauses.status().ToString());
    return;
  }
  absl::MutexLock lock(&mu_);
  SetPausesLocked(*std::move(pauses));
}

void Engine::SetPausesLocked(std::vector<store::BackendPause> pauses) {
  std::map<std::string, store::BackendPause> next;
  for (store::BackendPause& p : pauses) next.emplace(p.backend, std::move(p));
  for (const auto& [name, pause] : pauses_) {
    if (next.count(name) != 0) continue;
    auto it = backend_state_.find(name);
    if (it != backend_state_.end()) it->second.maybe_queued = true;
    kicked_ = true;
  }
  pauses_ = std::move(next);
}

}  // namespace videotask::engine
