#include "server/engine/watch_hub.h"

#include <memory>
#include <utility>

#include "absl/hash/hash.h"

namespace videotask::engine {

WatchHub::Shard& WatchHub::ShardFor(const std::string& task_id) {
  return shards_[absl::Hash<std::string>()(task_id) % shards_.size()];
}

uint64_t WatchHub::Subscribe(const std::string& task_id, Callback callback,
                             DeletedCallback on_deleted) {
  uint64_t token;
  {
    absl::MutexLock lock(&token_mu_);
    token = next_token_++;
  }
  Shard& shard = ShardFor(task_id);
  absl::MutexLock lock(&shard.mu);
  shard.watchers[task_id].emplace(token, Watcher{std::move(callback), std::move(on_deleted)});
  return token;
}

void WatchHub::Unsubscribe(const std::string& task_id, uint64_t token) {
  Shard& shard = ShardFor(task_id);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.watchers.find(task_id);
  if (it == shard.watchers.end()) return;
  it->second.erase(token);
  if (it->second.empty()) shard.watchers.erase(it);
}

void WatchHub::Publish(const Task& task) {
  Shard& shard = ShardFor(task.id);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.watchers.find(task.id);
  if (it == shard.watchers.end()) return;
  auto change = std::make_shared<const TaskChange>(task);
  for (auto& [token, watcher] : it->second) watcher.on_change(change);
}

void WatchHub::PublishDeleted(const std::string& task_id) {
  Shard& shard = ShardFor(task_id);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.watchers.find(task_id);
  if (it == shard.watchers.end()) return;
  for (auto& [token, watcher] : it->second) {
    if (watcher.on_deleted) watcher.on_deleted();
  }
}

int64_t WatchHub::size() const {
  int64_t n = 0;
  for (const Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    for (const auto& [id, watchers] : shard.watchers) n += static_cast<int64_t>(watchers.size());
  }
  return n;
}

}  // namespace videotask::engine
