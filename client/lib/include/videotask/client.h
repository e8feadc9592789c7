// The videotask client library (libvideotask_client, CMake target
// videotask::client): the generated gRPC stubs of videotask.v1 plus a small
// channel helper that knows the address, TLS, the bearer token and deadlines.
//
//   videotask::ClientOptions options;
//   options.target = "127.0.0.1:50051";
//   std::string error;
//   std::unique_ptr<videotask::Client> client = videotask::Client::Create(options, &error);
//   videotask::v1::Task task;
//   grpc::Status status = client->Submit(request, &task);
//
// Only the standard library and gRPC appear here; the stubs are in
// <videotask/v1/video_task_service.grpc.pb.h>.
#ifndef VIDEOTASK_CLIENT_H_
#define VIDEOTASK_CLIENT_H_

#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "videotask/v1/video_task_service.grpc.pb.h"

namespace videotask {

struct ClientOptions {
  std::string target = "127.0.0.1:50051";  // host:port
  bool tls = false;                         // TLS with the system's roots unless tls_ca_file
  std::string tls_ca_file;                  // PEM roots to trust; implies TLS
  // Bearer token sent with every call; "" = none. Refused in clear text to
  // anything but a loopback address. Never printed.
  std::string token;
  // Deadline of a unary call unless the call gives its own.
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
};

// Thread-safe: one Client serves many threads, as its channel and stub do.
class Client {
 public:
  // Builds the channel (no I/O yet: an unreachable server shows on the first
  // call as UNAVAILABLE). nullptr with the reason in `*error` for an empty
  // target, an unreadable CA file or a token in clear text to a remote host.
  static std::unique_ptr<Client> Create(const ClientOptions& options, std::string* error);

  v1::VideoTaskService::Stub& stub() { return *stub_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

  // A context for a unary call: the deadline (`timeout`, else
  // options.timeout) and the token.
  std::unique_ptr<grpc::ClientContext> NewContext(
      std::chrono::milliseconds timeout = std::chrono::milliseconds::zero()) const;
  // A context for a stream that may last: the token, no deadline.
  std::unique_ptr<grpc::ClientContext> NewStreamContext() const;

  // SubmitTask with the default deadline.
  grpc::Status Submit(const v1::SubmitTaskRequest& request, v1::Task* task);
  // Waits until task `id` ends (SUCCEEDED, FAILED or CANCELLED) or `timeout`
  // passes; `*task` holds its latest state either way. DEADLINE_EXCEEDED
  // when the task had not ended by then.
  grpc::Status Wait(const std::string& id, std::chrono::milliseconds timeout, v1::Task* task);
  // The whole output video of a SUCCEEDED task; a stream broken midway is
  // resumed from the last byte received.
  grpc::Status ReadOutput(const std::string& id, std::string* video);

  // The library's version, "MAJOR.MINOR.PATCH".
  static std::string Version();

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

 private:
  Client(const ClientOptions& options, std::shared_ptr<grpc::Channel> channel);

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VideoTaskService::Stub> stub_;
};

}  // namespace videotask

#endif  // VIDEOTASK_CLIENT_H_
