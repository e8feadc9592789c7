#include "server/http/http_server.h"

#include <sys/socket.h>

#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/thread_name.h"

namespace videotask::http {

absl::Status SplitHostPort(const std::string& address, std::string& host, int& port) {
  const absl::Status bad = absl::InvalidArgumentError(
      "--http_listen must be host:port (or [ipv6]:port) with a port 0..65535");
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad;
  host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) return bad;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) return bad;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(HttpServerOptions options) {
  std::string host;
  int port = 0;
  absl::Status split = SplitHostPort(options.listen, host, port);
  if (!split.ok()) return split;
  const auth::TlsFiles& tls = options.tls;
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  std::unique_ptr<httplib::Server> server;
  if (!tls.cert_file.empty()) {
    // Read here first so that an unreadable file gives its own error.
    for (const std::string* path : {&tls.cert_file, &tls.key_file, &tls.client_ca_file}) {
      if (path->empty()) continue;
      absl::StatusOr<std::string> read = ReadFile(*path, int64_t{1} << 20);
      if (!read.ok()) return read.status();
    }
    auto ssl = std::make_unique<httplib::SSLServer>(
        tls.cert_file.c_str(), tls.key_file.c_str(),
        tls.client_ca_file.empty() ? nullptr : tls.client_ca_file.c_str());
    if (!ssl->is_valid()) {
      return absl::InvalidArgumentError(
          "the HTTP port cannot use --tls_cert/--tls_key (or --tls_client_ca): not a valid PEM "
          "certificate and key");
    }
    server = std::move(ssl);
  } else {
    server = std::make_unique<httplib::Server>();
  }
  const int threads = std::max(1, options.threads);
  server->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server->set_read_timeout(options.read_timeout_seconds, 0);
  server->set_write_timeout(options.read_timeout_seconds, 0);
  server->set_payload_max_length(64 * 1024);  // routes are GETs
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a
  // second server bind the same port and share its connections.
  server->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server->set_default_headers({{"X-Content-Type-Options", "nosniff"},
                               {"Cache-Control", "no-store"}});
  return absl::WrapUnique(new HttpServer(std::move(options), std::move(server), host, port));
}

HttpServer::HttpServer(HttpServerOptions options, std::unique_ptr<httplib::Server> server,
                       std::string host, int port)
    : options_(std::move(options)), server_(std::move(server)), host_(std::move(host)),
      port_(port) {}

HttpServer::~HttpServer() { Stop(); }

bool HttpServer::Authorized(const httplib::Request& request) const {
  if (options_.tokens == nullptr) return true;
  return options_.tokens->AcceptsAuthorization(request.get_header_value("Authorization"));
}

void HttpServer::Get(const std::string& path, Access access, Handler handler) {
  server_->Get(path, Guard(access, std::move(handler)));
}

void HttpServer::Post(const std::string& path, Access access, Handler handler) {
  server_->Post(path, Guard(access, std::move(handler)));
}

HttpServer::Handler HttpServer::Guard(Access access, Handler handler) const {
  return [this, access, handler = std::move(handler)](const httplib::Request& req,
                                                      httplib::Response& res) {
    if (access == Access::kProtected && !Authorized(req)) {
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer");
      res.set_content("unauthenticated: send \"Authorization: Bearer <token>\"\n", "text/plain");
      return;
    }
    handler(req, res);
  };
}

absl::Status HttpServer::Start() {
  int bound = port_ == 0 ? server_->bind_to_any_port(host_) : port_;
  bool ok = port_ == 0 ? bound > 0 : server_->bind_to_port(host_, port_);
  if (!ok) {
    return absl::UnavailableError(absl::StrCat("cannot listen for HTTP on ", options_.listen));
  }
  port_ = bound;
  thread_ = std::thread([this] {
    SetThreadName("http-accept");
    server_->listen_after_bind();
  });
  // Serving before returning: a stop() before the accept loop runs would be
  // lost, and Stop() would wait forever.
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) absl::SleepFor(absl::Milliseconds(1));
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace videotask::http
