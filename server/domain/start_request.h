// The provider request a task makes: its resolved spec as the backend
// interface takes it. One mapping, used by the API (to let the backend check
// a spec before it is stored) and by the engine (to start the task).
#ifndef VIDEOTASK_SERVER_DOMAIN_START_REQUEST_H_
#define VIDEOTASK_SERVER_DOMAIN_START_REQUEST_H_

#include <string>

#include "backends/api/backend.h"
#include "server/domain/task.h"

namespace videotask {

// `image_bytes` for content and server_path images, empty for https images
// (moved into the request).
backends::StartRequest MakeStartRequest(const Task& task, std::string image_bytes);

}  // namespace videotask

#endif  // VIDEOTASK_SERVER_DOMAIN_START_REQUEST_H_
