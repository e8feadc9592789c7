#include "server/dashboard/retry_call.h"

#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>

#include "absl/synchronization/notification.h"

namespace videotask::dashboard {
namespace {

const google::protobuf::MethodDescriptor* TaskMethod(const std::string& name) {
  const google::protobuf::ServiceDescriptor* service =
      v1::Task::descriptor()->file()->FindServiceByName("VideoTaskService");
  const google::protobuf::MethodDescriptor* method =
      service == nullptr ? nullptr : service->FindMethodByName(name);
  if (method == nullptr || method->client_streaming() || method->server_streaming() ||
      method->output_type() != v1::Task::descriptor()) {
    return nullptr;
  }
  const google::protobuf::FieldDescriptor* id = method->input_type()->FindFieldByName("id");
  if (id == nullptr || id->type() != google::protobuf::FieldDescriptor::TYPE_STRING ||
      id->is_repeated()) {
    return nullptr;
  }
  return method;
}

}  // namespace

bool ServiceHasRetry() { return TaskMethod("RetryTask") != nullptr; }

grpc::Status CallRetryTask(const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& ctx,
                           const std::string& id, v1::Task& task) {
  return CallTaskMethodById(channel, ctx, "RetryTask", id, task);
}

grpc::Status CallTaskMethodById(const std::shared_ptr<grpc::Channel>& channel,
                                grpc::ClientContext& ctx, const std::string& name,
                                const std::string& id, v1::Task& task) {
  const google::protobuf::MethodDescriptor* method = TaskMethod(name);
  if (method == nullptr) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "this server has no " + name);
  }
  google::protobuf::DynamicMessageFactory factory;
  std::unique_ptr<google::protobuf::Message> request(
      factory.GetPrototype(method->input_type())->New());
  request->GetReflection()->SetString(request.get(), method->input_type()->FindFieldByName("id"),
                                      id);
  std::string bytes = request->SerializeAsString();
  grpc::Slice slice(bytes);
  grpc::ByteBuffer send(&slice, 1);
  grpc::ByteBuffer receive;
  grpc::Status status;
  absl::Notification done;
  grpc::GenericStub stub(channel);
  const std::string path = "/" + method->service()->full_name() + "/" + method->name();
  stub.UnaryCall(&ctx, path, grpc::StubOptions(), &send, &receive, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  if (!status.ok()) return status;
  std::vector<grpc::Slice> slices;
  if (!receive.Dump(&slices).ok()) return grpc::Status(grpc::StatusCode::INTERNAL, "bad answer");
  std::string answer;
  for (const grpc::Slice& s : slices) {
    answer.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  if (!task.ParseFromString(answer)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "RetryTask answered something not a Task");
  }
  return grpc::Status::OK;
}

}  // namespace videotask::dashboard
