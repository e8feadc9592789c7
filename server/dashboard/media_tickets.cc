#include "server/dashboard/media_tickets.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/escaping.h"

namespace videotask::dashboard {

std::string MediaTickets::Issue(const std::string& task_id) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) std::abort();  // no entropy: nothing is safe
  std::string ticket =
      absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
  absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  DropExpired(now);
  while (tickets_.size() >= max_tickets_ && !tickets_.empty()) {
    auto oldest = std::min_element(tickets_.begin(), tickets_.end(), [](const auto& a, const auto& b) {
      return a.second.expires < b.second.expires;
    });
    tickets_.erase(oldest);
  }
  tickets_[ticket] = Entry{task_id, now + lifetime_};
  return ticket;
}

std::optional<std::string> MediaTickets::Lookup(const std::string& ticket) {
  absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  auto it = tickets_.find(ticket);
  if (it == tickets_.end()) return std::nullopt;
  if (it->second.expires <= now) {
    tickets_.erase(it);
    return std::nullopt;
  }
  return it->second.task_id;
}

void MediaTickets::DropExpired(absl::Time now) {
  absl::erase_if(tickets_, [now](const auto& kv) { return kv.second.expires <= now; });
}

}  // namespace videotask::dashboard
