#include "server/http/probes.h"

#include "absl/strings/str_cat.h"

namespace videotask::http {

absl::Status Readiness::Ready() const {
  if (draining()) return absl::UnavailableError("draining");
  for (const auto& [name, check] : checks_) {
    absl::Status status = check();
    if (!status.ok()) return absl::UnavailableError(absl::StrCat(name, ": ", status.message()));
  }
  return absl::OkStatus();
}

void AddProbeRoutes(HttpServer& server, const Readiness& readiness) {
  server.Get("/healthz", HttpServer::Access::kOpen,
             [](const httplib::Request&, httplib::Response& res) {
               res.set_content("ok\n", "text/plain");
             });
  server.Get("/readyz", HttpServer::Access::kOpen,
             [&readiness](const httplib::Request&, httplib::Response& res) {
               absl::Status ready = readiness.Ready();
               if (ready.ok()) {
                 res.set_content("ready\n", "text/plain");
                 return;
               }
               res.status = 503;
               res.set_content(absl::StrCat("not ready: ", ready.message(), "\n"), "text/plain");
             });
}

}  // namespace videotask::http
