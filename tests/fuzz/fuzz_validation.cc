// Fuzzes SubmitTaskRequest validation with the mock and runway backends and
// an image root holding a real image, a sub folder and a symlink that leads
// out of the root. Any request either validates or is refused with
// INVALID_ARGUMENT naming a field; an accepted request has a safe stub, image
// bytes within the limit, and never an image from outside the root.
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "backends/mock/mock_backend.h"
#include "backends/runway/runway_backend.h"
#include "common/clock.h"
#include "server/api/validation.h"
#include "server/domain/filename_stub.h"
#include "videotask/v1/video_task_service.pb.h"

namespace {

using videotask::backends::HttpRequest;
using videotask::backends::HttpResponse;

class RefusingTransport final : public videotask::backends::HttpTransport {
 public:
  absl::StatusOr<HttpResponse> Send(const HttpRequest&) override {
    return absl::UnavailableError("no network while fuzzing");
  }
  absl::StatusOr<HttpResponse> SendStreaming(const HttpRequest&,
                                             const videotask::backends::BodySink&) override {
    return absl::UnavailableError("no network while fuzzing");
  }
};

constexpr int64_t kMaxImage = 64 << 10;
constexpr char kOutsideMarker[] = "OUTSIDE-THE-ROOT";

struct World {
  videotask::SystemClock clock;
  RefusingTransport http;
  absl::BitGen rng;
  std::vector<videotask::backends::EnabledBackend> backends;
  std::unique_ptr<videotask::api::Validator> validator;
};

// A minimal PNG (1x1) so server_path images can pass sniffing.
const unsigned char kPng[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00,
    0x00, 0x90, 0x77, 0x53, 0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78,
    0x9c, 0x63, 0x10, 0x50, 0x30, 0x00, 0x00, 0x00, 0xa4, 0x00, 0x61, 0x34, 0x66, 0x7d,
    0x72, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

World* MakeWorld() {
  auto* world = new World();
  char pattern[] = "/tmp/vt_fuzz_validation.XXXXXX";
  std::string base = mkdtemp(pattern);
  std::string root = base + "/root";
  mkdir(root.c_str(), 0755);
  mkdir((root + "/sub").c_str(), 0755);
  std::string png(reinterpret_cast<const char*>(kPng), sizeof(kPng));
  std::ofstream(root + "/ok.png", std::ios::binary) << png;
  std::ofstream(root + "/sub/in.png", std::ios::binary) << png;
  // Outside the root, with the marker in it (also a PNG, so only the
  // confinement can refuse it).
  std::ofstream(base + "/outside.png", std::ios::binary) << png << kOutsideMarker;
  if (symlink((base + "/outside.png").c_str(), (root + "/escape.png").c_str()) != 0 ||
      symlink(base.c_str(), (root + "/up").c_str()) != 0) {
    std::abort();
  }
  videotask::backends::BackendDeps deps{world->clock, world->rng, &world->http};
  videotask::backends::BackendConfig mock;
  mock.name = "mock";
  mock.max_image_bytes = kMaxImage;
  world->backends.push_back(
      {mock, std::make_unique<videotask::backends::MockBackend>(mock, world->clock)});
  videotask::backends::BackendConfig runway;
  runway.name = "runway";
  runway.max_image_bytes = kMaxImage;
  auto backend = videotask::backends::RunwayBackend::Create(
      runway, {"http://127.0.0.1:9", std::string("key_") + std::string(128, 'a')}, deps);
  if (!backend.ok()) std::abort();
  world->backends.push_back({runway, *std::move(backend)});
  videotask::api::ValidatorOptions options;
  options.default_backend = "mock";
  options.image_root = root;
  options.max_image_bytes = kMaxImage;
  world->validator = std::make_unique<videotask::api::Validator>(options, world->backends);
  return world;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = MakeWorld();
  videotask::v1::SubmitTaskRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  absl::StatusOr<videotask::store::NewTask> task = world->validator->Validate(request, "");
  if (!task.ok()) {
    if (task.status().code() != absl::StatusCode::kInvalidArgument &&
        task.status().code() != absl::StatusCode::kFailedPrecondition &&
        task.status().code() != absl::StatusCode::kNotFound) {
      std::abort();
    }
    if (task.status().message().empty()) std::abort();
    return 0;
  }
  const videotask::Task& t = task->task;
  if (!videotask::IsValidStub(t.target_filename_stub)) std::abort();
  if (static_cast<int64_t>(task->image_bytes.size()) > kMaxImage) std::abort();
  if (absl::StrContains(task->image_bytes, kOutsideMarker)) std::abort();
  return 0;
}
