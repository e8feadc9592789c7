// PgTaskStore's change feed: a trigger NOTIFYs every versioned change of a
// task; a listener thread hands the tasks other stores changed to the
// SetChangeListener callback.
#include "server/store/postgres/pg_task_store.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/thread_name.h"
#include "server/store/postgres/pg_session.h"

namespace videotask::store {
namespace {

using pg::Connection;

constexpr char kChannel[] = "videotask_tasks";
constexpr char kListenSql[] = "LISTEN videotask_tasks";

}  // namespace

void PgTaskStore::SetChangeListener(std::function<void(const Task&)> listener) {
  absl::MutexLock lock(&listener_mu_);
  listener_ = std::move(listener);
}

void PgTaskStore::Deliver(const std::vector<std::string>& ids) {
  absl::StatusOr<std::vector<Task>> tasks = [&]() -> absl::StatusOr<std::vector<Task>> {
    ConnLease lease = AcquireConn();
    pg::PgSession session(lease.get());
    return table_.Select(
        session,
        absl::StrCat("SELECT ", table_.sql().columns, " FROM tasks WHERE id = ANY($1::text[])"),
        [&](internal::RowWriter& w) { w.Text(pg::TextArray(ids)); });
  }();
  if (!tasks.ok()) {
    VT_LOG_WARN("task store: reading changed tasks failed: {}", tasks.status().ToString());
    return;
  }
  // Held while calling: SetChangeListener(nullptr) waits for a delivery in
  // progress, so the listener's owner may go away right after.
  absl::MutexLock lock(&listener_mu_);
  if (!listener_) return;
  for (const Task& t : *tasks) {
    notifications_.fetch_add(1);
    listener_(t);
  }
}

bool PgTaskStore::ReconnectListener(absl::Duration& backoff) {
  pollfd wake{wake_pipe_[0], POLLIN, 0};
  ::poll(&wake, 1, static_cast<int>(absl::ToInt64Milliseconds(backoff)));
  if (listener_stop_.load()) return false;
  backoff = std::min(backoff * 2, absl::Seconds(5));
  absl::StatusOr<Connection> conn = Connection::Open(options_.conninfo);
  if (!conn.ok() || !conn->Run(kListenSql).ok()) return false;
  *listen_conn_ = *std::move(conn);
  backoff = absl::Milliseconds(100);
  VT_LOG_WARN(
      "task store: change feed reconnected; changes made meanwhile by other "
      "replicas reach watchers only with their next change");
  return true;
}

std::vector<std::string> PgTaskStore::TakeNotifiedIds(PGconn* raw) {
  std::vector<std::string> ids;
  absl::flat_hash_set<std::string> seen;
  while (PGnotify* note = PQnotifies(raw)) {
    absl::string_view payload(note->extra != nullptr ? note->extra : "");
    if (note->relname != nullptr && absl::string_view(note->relname) == kChannel) {
      size_t space = payload.find(' ');
      if (space != absl::string_view::npos && payload.substr(0, space) != origin_) {
        std::string id(payload.substr(space + 1));
        if (seen.insert(id).second) ids.push_back(std::move(id));
      }
    }
    PQfreemem(note);
  }
  return ids;
}

void PgTaskStore::ListenerLoop() {
  SetThreadName("pg-listener");
  bool connected = true;
  absl::Duration backoff = absl::Milliseconds(100);
  while (!listener_stop_.load()) {
    if (!connected) {
      // Wait (interruptibly), then reconnect and listen again.
      connected = ReconnectListener(backoff);
      continue;
    }
    PGconn* raw = listen_conn_->raw();
    pollfd fds[2] = {{PQsocket(raw), POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    int n = ::poll(fds, 2, 1000);
    if (n < 0 && errno != EINTR) break;
    if (listener_stop_.load()) break;
    if (n <= 0 || (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) == 0) continue;
    if (PQconsumeInput(raw) == 0 || PQstatus(raw) != CONNECTION_OK) {
      VT_LOG_WARN("task store: change feed connection lost: {}", PQerrorMessage(raw));
      connected = false;
      continue;
    }
    std::vector<std::string> ids = TakeNotifiedIds(raw);
    if (!ids.empty()) Deliver(ids);
  }
}

}  // namespace videotask::store
