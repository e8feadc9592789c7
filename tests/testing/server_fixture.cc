#include "tests/testing/server_fixture.h"

#include <zlib.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/sha256.h"
#include "server/domain/task.h"

namespace videotask::testing {
namespace {

void PutBigEndian32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void PutChunk(std::string& out, const char* type, const std::string& data) {
  PutBigEndian32(out, static_cast<uint32_t>(data.size()));
  std::string body = std::string(type, 4) + data;
  out += body;
  PutBigEndian32(out, static_cast<uint32_t>(
                          crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size())));
}

}  // namespace

AppConfig TestConfig(const std::string& data_dir) {
  AppConfig config;
  config.data_dir = data_dir;
  backends::BackendConfig mock;
  mock.name = backends::kMockName;
  mock.max_concurrency = 64;
  mock.poll_interval = absl::Milliseconds(5);
  config.backends.push_back(backends::MockSetup(mock));
  config.worker_threads = 4;
  config.api_threads = 4;
  config.retry.initial_backoff = absl::Milliseconds(20);
  config.retry.max_backoff = absl::Milliseconds(200);
  return config;
}

std::string TinyPng(int seed) {
  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  PutBigEndian32(ihdr, 1);  // width
  PutBigEndian32(ihdr, 1);  // height
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB
  PutChunk(png, "IHDR", ihdr);
  // One row: filter byte 0, then R G B.
  unsigned char raw[4] = {0, static_cast<unsigned char>(seed), static_cast<unsigned char>(seed >> 8),
                          static_cast<unsigned char>(seed >> 16)};
  uLongf size = compressBound(sizeof(raw));
  std::string idat(size, '\0');
  compress(reinterpret_cast<Bytef*>(idat.data()), &size, raw, sizeof(raw));
  idat.resize(size);
  PutChunk(png, "IDAT", idat);
  PutChunk(png, "IEND", "");
  return png;
}

store::NewTask MockNewTask(int seed, const std::map<std::string, std::string>& labels,
                           const std::string& backend, int priority) {
  store::NewTask nt;
  nt.image_bytes = TinyPng(seed);
  nt.task.image_sha256 = Sha256Hex(nt.image_bytes);
  nt.task.image_size_bytes = static_cast<int64_t>(nt.image_bytes.size());
  nt.task.spec.backend = backend;
  nt.task.spec.model = "gen4_turbo";
  nt.task.spec.image.source = ImageSource::kContent;
  nt.task.spec.image.mime_type = "image/png";
  nt.task.spec.image.filename = "shot.png";
  nt.task.spec.ratio = "1280:720";
  nt.task.spec.duration_seconds = 4;
  nt.task.estimated_cost_micros = 40'000;  // the mock's $0.01/s x 4 s
  nt.task.spec.labels = labels;
  nt.task.spec.priority = priority;
  nt.task.target_filename_stub = "shot_video";
  nt.task.spec_fingerprint = SpecFingerprint(nt.task.spec, nt.task.image_sha256);
  return nt;
}

void ServerTest::SetUp() { StartServer(); }

void ServerTest::TearDown() { StopServer(); }

void ServerTest::StartServer() {
  AppConfig config = TestConfig(tmp_.path());
  Configure(config);
  absl::StatusOr<std::unique_ptr<App>> app = App::Create(config, clock_, MakeHttp());
  ASSERT_TRUE(app.ok()) << app.status();
  app_ = *std::move(app);
  ASSERT_TRUE(app_->Start().ok());
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.RegisterService(&app_->service());
  server_ = builder.BuildAndStart();
  ASSERT_NE(server_, nullptr);
  ASSERT_NE(port_, 0);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  channel_ = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_),
                                       grpc::InsecureChannelCredentials(), args);
  stub_ = v1::VideoTaskService::NewStub(channel_);
}

void ServerTest::StopServer() {
  if (server_ != nullptr) {
    app_->BeginDrain();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
  }
  stub_.reset();
  channel_.reset();
  app_.reset();
}

backends::MockBackend& ServerTest::mock() {
  return *static_cast<backends::MockBackend*>(app_->backend("mock"));
}

v1::SubmitTaskRequest ServerTest::PngRequest(const std::string& filename, int seed) {
  v1::SubmitTaskRequest request;
  request.mutable_spec()->mutable_image()->set_content(TinyPng(seed));
  request.mutable_spec()->mutable_image()->set_filename(filename);
  request.mutable_spec()->set_prompt_text("slow zoom in, cinematic lighting");
  return request;
}

v1::Task ServerTest::WaitTerminal(const std::string& id) {
  absl::Time give_up = absl::Now() + absl::Seconds(30);
  v1::Task task;
  while (absl::Now() < give_up) {
    grpc::ClientContext ctx;
    v1::WaitTaskRequest request;
    request.set_id(id);
    request.mutable_timeout()->set_seconds(5);
    grpc::Status status = stub_->WaitTask(&ctx, request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (!status.ok()) return task;
    if (task.state() == v1::SUCCEEDED || task.state() == v1::FAILED ||
        task.state() == v1::CANCELLED) {
      return task;
    }
  }
  ADD_FAILURE() << "task " << id << " did not finish in 30 s; last state "
                << v1::State_Name(task.state());
  return task;
}

}  // namespace videotask::testing
