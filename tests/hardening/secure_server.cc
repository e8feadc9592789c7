#include "tests/hardening/secure_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "tests/testing/server_fixture.h"

namespace videotask::testing {

absl::Status SecureServer::Start(const std::string& data_dir,
                                 const auth::SecurityOptions& security) {
  AppConfig config = TestConfig(data_dir);
  config.tokens = security.tokens;
  absl::StatusOr<std::unique_ptr<App>> app = App::Create(std::move(config), clock_, nullptr);
  if (!app.ok()) return app.status();
  app_ = *std::move(app);
  if (absl::Status started = app_->Start(); !started.ok()) return started;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds =
      auth::MakeServerCredentials(security);
  if (!creds.ok()) return creds.status();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", *creds, &port_);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.RegisterService(&app_->service());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) return absl::InternalError("server did not start");
  server_->GetHealthCheckService()->SetServingStatus(true);
  return absl::OkStatus();
}

void SecureServer::Stop() {
  if (app_ != nullptr) app_->BeginDrain();
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
  }
  if (app_ != nullptr) {
    app_->Stop();
    app_.reset();
  }
}

std::string SecureServer::address() const { return absl::StrCat("127.0.0.1:", port_); }

}  // namespace videotask::testing
