// The HTTP port beside gRPC (--http_listen): a small route table over
// cpp-httplib. Routes are added by the composition root before Start():
// /metrics, /healthz and /readyz today, a dashboard later. TLS and bearer
// tokens work as on the gRPC port (server/auth): with --tls_cert/--tls_key
// the port speaks HTTPS (with --tls_client_ca, clients must present a
// certificate); with --auth_token_file every route but the open ones needs
// "Authorization: Bearer <token>" or gets 401. Tokens are never logged.
#ifndef VIDEOTASK_SERVER_HTTP_HTTP_SERVER_H_
#define VIDEOTASK_SERVER_HTTP_HTTP_SERVER_H_

#include <httplib.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/auth/auth.h"

namespace videotask::http {

struct HttpServerOptions {
  std::string listen = "127.0.0.1:50052";  // host:port; port 0 picks a free one
  auth::TlsFiles tls;                      // cert and key set = HTTPS
  std::shared_ptr<const auth::TokenChecker> tokens;  // null = no token asked
  int threads = 4;
  int read_timeout_seconds = 10;
};

class HttpServer {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  // kOpen: answered without a token (probes). kProtected: needs a bearer
  // token when the server has tokens.
  enum class Access { kOpen, kProtected };

  // INVALID_ARGUMENT for a bad address or half a key pair; the TLS files'
  // errors when they cannot be loaded.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Create(HttpServerOptions options);
  ~HttpServer();  // Stop()

  // Adds a GET route (exact path). Call before Start().
  void Get(const std::string& path, Access access, Handler handler);
  // Adds a POST route (exact path). Call before Start().
  void Post(const std::string& path, Access access, Handler handler);

  // Binds and serves on a thread of its own. UNAVAILABLE when the address
  // cannot be bound.
  absl::Status Start();
  // The bound port (after Start).
  int port() const { return port_; }
  bool tls() const { return !options_.tls.cert_file.empty(); }
  // Closes the port and waits for requests in flight.
  void Stop();

 private:
  HttpServer(HttpServerOptions options, std::unique_ptr<httplib::Server> server, std::string host,
             int port);
  bool Authorized(const httplib::Request& request) const;
  // `handler` behind the token check of `access`.
  Handler Guard(Access access, Handler handler) const;

  const HttpServerOptions options_;
  std::unique_ptr<httplib::Server> server_;
  const std::string host_;
  int port_;
  std::thread thread_;
};

// Splits "host:port" or "[v6]:port". INVALID_ARGUMENT names the flag value's
// expected shape.
absl::Status SplitHostPort(const std::string& address, std::string& host, int& port);

}  // namespace videotask::http

#endif  // VIDEOTASK_SERVER_HTTP_HTTP_SERVER_H_
