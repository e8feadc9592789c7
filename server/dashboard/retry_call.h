// RetryTask, when the service offers it: found by name in the service's
// descriptor and called with a request built from its descriptor, so the
// dashboard needs no code generated for it and shows a retry only when the
// server it is built into has the method.
#ifndef VIDEOTASK_SERVER_DASHBOARD_RETRY_CALL_H_
#define VIDEOTASK_SERVER_DASHBOARD_RETRY_CALL_H_

#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include "videotask/v1/video_task_service.pb.h"

namespace videotask::dashboard {

// True when videotask.v1.VideoTaskService has RetryTask(RetryTaskRequest{id}) -> Task.
bool ServiceHasRetry();

// Calls RetryTask for `id` on `channel` (UNIMPLEMENTED when the service has
// no such method). Blocks until the answer.
grpc::Status CallRetryTask(const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& ctx,
                           const std::string& id, v1::Task& task);

// The mechanism under CallRetryTask: calls VideoTaskService's unary method
// `method` taking {string id} and answering a Task, by descriptor.
// UNIMPLEMENTED when the service has no such method.
grpc::Status CallTaskMethodById(const std::shared_ptr<grpc::Channel>& channel,
                                grpc::ClientContext& ctx, const std::string& method,
                                const std::string& id, v1::Task& task);

}  // namespace videotask::dashboard

#endif  // VIDEOTASK_SERVER_DASHBOARD_RETRY_CALL_H_
