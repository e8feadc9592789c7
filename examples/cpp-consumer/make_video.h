// What the example service does with videotask: one image in, one video out.
#ifndef MAKE_VIDEO_H_
#define MAKE_VIDEO_H_

#include <chrono>
#include <string>

#include "videotask/client.h"

// Submits `image` (PNG, JPEG or WebP bytes named `filename`) with `prompt`,
// waits up to `timeout` for the task to end and returns its video in
// `*video`. A failed task gives its error code and message.
inline grpc::Status MakeVideo(videotask::Client& client, const std::string& image,
                              const std::string& filename, const std::string& prompt,
                              std::chrono::milliseconds timeout, std::string* video,
                              videotask::v1::Task* task, const std::string& backend = "") {
  videotask::v1::SubmitTaskRequest request;
  request.mutable_spec()->set_backend(backend);
  request.mutable_spec()->set_prompt_text(prompt);
  request.mutable_spec()->mutable_image()->set_content(image);
  request.mutable_spec()->mutable_image()->set_filename(filename);
  grpc::Status status = client.Submit(request, task);
  if (!status.ok()) return status;
  status = client.Wait(task->id(), timeout, task);
  if (!status.ok()) return status;
  if (task->state() != videotask::v1::SUCCEEDED) {
    return grpc::Status(grpc::StatusCode::ABORTED,
                        task->error().code() + ": " + task->error().message());
  }
  return client.ReadOutput(task->id(), video);
}

#endif  // MAKE_VIDEO_H_
