// Reuse of identical work: what makes two tasks "identical" (the same
// result may be handed to both), as one digest the store keeps in
// tasks.reuse_key and matches at insert (NewTask::reuse).
#ifndef VIDEOTASK_SERVER_STORE_REUSE_KEY_H_
#define VIDEOTASK_SERVER_STORE_REUSE_KEY_H_

#include <string>

#include "server/domain/task.h"

namespace videotask::store::internal {

// Hex SHA-256 over the backend, model, image digest, prompt, ratio,
// duration, seed (set, and to what, or unset) and model options of a
// normalized task, length-prefixed. "" for a task that is never matched:
// an https image has no digest before it is fetched (the same URL may
// serve other bytes later), so only inline and server_path images are
// keyed. Labels, priority, stub, request_id and public_figure_threshold
// are not part of it.
std::string ReuseKey(const Task& task);

}  // namespace videotask::store::internal

#endif  // VIDEOTASK_SERVER_STORE_REUSE_KEY_H_
