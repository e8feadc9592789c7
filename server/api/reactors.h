// Streaming and waiting calls as callback reactors: no thread is held while
// a watcher or waiter waits.
#ifndef VIDEOTASK_SERVER_API_REACTORS_H_
#define VIDEOTASK_SERVER_API_REACTORS_H_

#include <grpcpp/grpcpp.h>

#include "server/api/service.h"

namespace videotask::api {

grpc::ServerWriteReactor<v1::Task>* NewWatchReactor(VideoTaskServiceImpl& service,
                                                    grpc::CallbackServerContext* ctx,
                                                    const std::string& id);
grpc::ServerUnaryReactor* NewWaitReactor(VideoTaskServiceImpl& service,
                                         grpc::CallbackServerContext* ctx,
                                         const std::string& id, absl::Duration timeout,
                                         v1::Task* reply);
grpc::ServerWriteReactor<v1::OutputChunk>* NewOutputReactor(VideoTaskServiceImpl& service,
                                                            const std::string& id, int64_t offset);

}  // namespace videotask::api

#endif  // VIDEOTASK_SERVER_API_REACTORS_H_
