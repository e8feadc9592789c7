// The probes of the HTTP port: /healthz (the process is up: always 200) and
// /readyz (200 while the server takes work; 503 with the reason once it
// drains, or while a check fails, e.g. the store cannot be read or written).
// Both stay open when the port asks for tokens: load balancers and
// Kubernetes probes carry none.
#ifndef VIDEOTASK_SERVER_HTTP_PROBES_H_
#define VIDEOTASK_SERVER_HTTP_PROBES_H_

#include <atomic>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "server/http/http_server.h"

namespace videotask::http {

class Readiness {
 public:
  using Check = std::function<absl::Status()>;

  // Adds a condition of readiness. Call before serving.
  void AddCheck(std::string name, Check check) {
    checks_.emplace_back(std::move(name), std::move(check));
  }
  // From now on /readyz answers 503 (SIGTERM: before the ports close).
  void SetDraining() { draining_.store(true); }
  bool draining() const { return draining_.load(); }

  // OK, or why not ready (draining, or the first failing check).
  absl::Status Ready() const;

 private:
  std::atomic<bool> draining_{false};
  std::vector<std::pair<std::string, Check>> checks_;
};

// Adds /healthz and /readyz. `readiness` is borrowed and outlives `server`.
void AddProbeRoutes(HttpServer& server, const Readiness& readiness);

}  // namespace videotask::http

#endif  // VIDEOTASK_SERVER_HTTP_PROBES_H_
