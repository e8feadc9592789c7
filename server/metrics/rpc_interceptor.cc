#include "server/metrics/rpc_interceptor.h"

#include <chrono>

namespace videotask::metrics {
namespace {

using grpc::experimental::InterceptionHookPoints;

class RpcMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(Metrics& metrics, const char* method)
      : metrics_(metrics), method_(method), began_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      auto elapsed = std::chrono::steady_clock::now() - began_;
      metrics_.OnRpc(method_ == nullptr ? "" : method_,
                     static_cast<int>(methods->GetSendStatus().error_code()),
                     absl::FromChrono(elapsed));
    }
    methods->Proceed();
  }

 private:
  Metrics& metrics_;
  const char* method_;  // owned by gRPC, lives as long as the call
  std::chrono::steady_clock::time_point began_;
};

class RpcMetricsFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsFactory(Metrics& metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcMetricsInterceptor(metrics_, info->method());  // gRPC owns and deletes it
  }

 private:
  Metrics& metrics_;
};

}  // namespace

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
RpcMetricsInterceptors(Metrics& metrics) {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> out;
  out.push_back(std::make_unique<RpcMetricsFactory>(metrics));
  return out;
}

}  // namespace videotask::metrics
