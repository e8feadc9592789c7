// An in-process videotask server (mock backend, real SQLite in a temp dir)
// listening on 127.0.0.1:<free port> with the credentials main() would
// build from --tls_* and --auth_token_file, plus health and reflection.
#ifndef VIDEOTASK_TESTS_HARDENING_SECURE_SERVER_H_
#define VIDEOTASK_TESTS_HARDENING_SECURE_SERVER_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "common/clock.h"
#include "server/app.h"
#include "server/auth/auth.h"

namespace videotask::testing {

class SecureServer {
 public:
  SecureServer() = default;
  ~SecureServer() { Stop(); }

  absl::Status Start(const std::string& data_dir, const auth::SecurityOptions& security);
  void Stop();

  int port() const { return port_; }
  std::string address() const;
  App& app() { return *app_; }

 private:
  SystemClock clock_;
  int port_ = 0;
  std::unique_ptr<App> app_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace videotask::testing

#endif  // VIDEOTASK_TESTS_HARDENING_SECURE_SERVER_H_
