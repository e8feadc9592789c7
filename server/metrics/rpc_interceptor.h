// A gRPC server interceptor that reports every call's method, status code
// and duration to Metrics. Register it on the ServerBuilder:
//   builder.experimental().SetInterceptorCreators(RpcMetricsInterceptors(metrics));
#ifndef VIDEOTASK_SERVER_METRICS_RPC_INTERCEPTOR_H_
#define VIDEOTASK_SERVER_METRICS_RPC_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <vector>

#include "server/metrics/metrics.h"

namespace videotask::metrics {

// `metrics` is borrowed and outlives the server.
std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
RpcMetricsInterceptors(Metrics& metrics);

}  // namespace videotask::metrics

#endif  // VIDEOTASK_SERVER_METRICS_RPC_INTERCEPTOR_H_
