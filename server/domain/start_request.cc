#include "server/domain/start_request.h"

#include <utility>

namespace videotask {

backends::StartRequest MakeStartRequest(const Task& task, std::string image_bytes) {
  backends::StartRequest req;
  req.task_id = task.id;
  req.model = task.spec.model;
  if (task.spec.image.source == ImageSource::kUri) {
    req.image_uri = task.spec.image.uri;
  } else {
    req.image_bytes = std::move(image_bytes);
    req.image_mime_type = task.spec.image.mime_type;
  }
  req.image_filename = task.spec.image.filename;
  req.prompt_text = task.spec.prompt_text;
  req.ratio = task.spec.ratio;
  req.duration_seconds = task.spec.duration_seconds;
  req.seed = task.spec.seed;
  req.public_figure_threshold = task.spec.public_figure_threshold;
  req.labels = task.spec.labels;
  req.model_options = task.spec.model_options;
  return req;
}

}  // namespace videotask
