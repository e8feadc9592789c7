#include "server/store/task_store.h"

#include <utility>

#include "absl/synchronization/notification.h"

namespace videotask::store {

InsertResults TaskStore::Insert(std::vector<NewTask> tasks) {
  absl::Notification done;
  InsertResults results;
  InsertAsync(std::move(tasks), [&](InsertResults r) {
    results = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return results;
}

}  // namespace videotask::store
