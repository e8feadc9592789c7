// Short-lived capabilities for a task's media. A <video> or <img> element
// cannot send an Authorization header, and the bearer token must never go
// into a URL; so the page asks (with its token) for a ticket, and the media
// URLs carry the ticket instead. A ticket is 128 random bits from OpenSSL,
// names one task, grants only reading that task's input image and output
// video, and expires after its lifetime.
#ifndef VIDEOTASK_SERVER_DASHBOARD_MEDIA_TICKETS_H_
#define VIDEOTASK_SERVER_DASHBOARD_MEDIA_TICKETS_H_

#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace videotask::dashboard {

class MediaTickets {
 public:
  // `clock` is borrowed. At most `max_tickets` live at once: the oldest go
  // first when more are issued.
  MediaTickets(const Clock& clock, absl::Duration lifetime, size_t max_tickets = 10000)
      : clock_(clock), lifetime_(lifetime), max_tickets_(max_tickets) {}

  // A new ticket for `task_id` (32 hex digits).
  std::string Issue(const std::string& task_id) ABSL_LOCKS_EXCLUDED(mu_);
  // The task a live ticket names; nullopt when unknown or expired.
  std::optional<std::string> Lookup(const std::string& ticket) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    std::string task_id;
    absl::Time expires;
  };
  void DropExpired(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock& clock_;
  const absl::Duration lifetime_;
  const size_t max_tickets_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> tickets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace videotask::dashboard

#endif  // VIDEOTASK_SERVER_DASHBOARD_MEDIA_TICKETS_H_
