#include "videotask/client.h"

#include <algorithm>
#include <utility>

#include "client/channel/channel.h"
#include "videotask/version.h"

namespace videotask {
namespace {

client::ChannelOptions ChannelOptionsOf(const ClientOptions& options) {
  client::ChannelOptions channel;
  channel.target = options.target;
  channel.tls = options.tls;
  channel.tls_ca_file = options.tls_ca_file;
  channel.token = options.token;
  channel.flags.target = "target";
  channel.flags.tls = "tls";
  channel.flags.tls_ca_file = "tls_ca_file";
  channel.flags.token = "token";
  return channel;
}

bool IsTerminal(v1::State state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED;
}

// Longest single WaitTask the server is asked for; Wait repeats it.
constexpr std::chrono::milliseconds kWaitSlice = std::chrono::seconds(50);
// Extra deadline of a WaitTask call beyond the server-side wait.
constexpr std::chrono::milliseconds kWaitSlack = std::chrono::seconds(5);
constexpr int kMaxOutputReconnects = 5;

}  // namespace

std::unique_ptr<Client> Client::Create(const ClientOptions& options, std::string* error) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // output chunks are up to 1 MiB plus framing
  args.SetMaxSendMessageSize(-1);     // images travel inline
  auto channel = client::MakeChannel(ChannelOptionsOf(options), args);
  if (!channel.ok()) {
    if (error != nullptr) *error = std::string(channel.status().message());
    return nullptr;
  }
  return std::unique_ptr<Client>(new Client(options, *std::move(channel)));
}

Client::Client(const ClientOptions& options, std::shared_ptr<grpc::Channel> channel)
    : options_(options),
      channel_(std::move(channel)),
      stub_(v1::VideoTaskService::NewStub(channel_)) {}

Client::~Client() = default;

std::unique_ptr<grpc::ClientContext> Client::NewContext(std::chrono::milliseconds timeout) const {
  auto ctx = NewStreamContext();
  if (timeout <= std::chrono::milliseconds::zero()) timeout = options_.timeout;
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

std::unique_ptr<grpc::ClientContext> Client::NewStreamContext() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  client::AddCallCredentials(ChannelOptionsOf(options_), *ctx);
  return ctx;
}

grpc::Status Client::Submit(const v1::SubmitTaskRequest& request, v1::Task* task) {
  auto ctx = NewContext();
  return stub_->SubmitTask(ctx.get(), request, task);
}

grpc::Status Client::Wait(const std::string& id, std::chrono::milliseconds timeout,
                          v1::Task* task) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        give_up - std::chrono::steady_clock::now());
    // A zero timeout means the server's longest wait: ask for at least 1 ms.
    auto slice = std::clamp(left, std::chrono::milliseconds(1), kWaitSlice);
    v1::WaitTaskRequest request;
    request.set_id(id);
    request.mutable_timeout()->set_seconds(slice.count() / 1000);
    request.mutable_timeout()->set_nanos(static_cast<int32_t>(slice.count() % 1000) * 1'000'000);
    auto ctx = NewContext(slice + kWaitSlack);
    grpc::Status status = stub_->WaitTask(ctx.get(), request, task);
    if (!status.ok()) return status;
    if (IsTerminal(task->state())) return status;
    if (std::chrono::steady_clock::now() >= give_up) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                          "task " + id + " had not ended when the wait timed out");
    }
  }
}

grpc::Status Client::ReadOutput(const std::string& id, std::string* video) {
  video->clear();
  int reconnects = 0;
  while (true) {
    v1::ReadTaskOutputRequest request;
    request.set_id(id);
    request.set_offset(static_cast<int64_t>(video->size()));
    auto ctx = NewStreamContext();
    auto reader = stub_->ReadTaskOutput(ctx.get(), request);
    v1::OutputChunk chunk;
    const size_t before = video->size();
    while (reader->Read(&chunk)) video->append(chunk.data());
    grpc::Status status = reader->Finish();
    if (status.ok()) return status;
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE || video->size() == before ||
        ++reconnects > kMaxOutputReconnects) {
      return status;
    }
  }
}

std::string Client::Version() { return VIDEOTASK_VERSION; }

}  // namespace videotask
