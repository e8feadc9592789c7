// The backend registry, and a backend added without touching server/: a toy
// declared only in this test runs a task through a real in-process server.
#include "backends/api/registry.h"

#include <map>
#include <memory>
#include <string>
#include <utility>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "backends/builtin.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/status_matchers.h"

namespace videotask::backends {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::videotask::testing::StatusIs;

EnvReader FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](absl::string_view name) {
    auto it = vars.find(std::string(name));
    return it == vars.end() ? std::string() : it->second;
  };
}

// A backend that finishes every task at once with a few bytes.
class ToyBackend final : public Backend {
 public:
  ToyBackend() {
    ModelCapabilities model;
    model.name = "toy-1";
    model.ratios = {"1:1"};
    model.default_ratio = "1:1";
    model.durations = {1};
    model.default_duration_seconds = 1;
    model.max_prompt_utf16 = 1000;
    caps_.default_model = "toy-1";
    caps_.models.push_back(model);
    caps_.image_mime_types = {"image/png"};
  }
  const Capabilities& capabilities() const override { return caps_; }
  absl::StatusOr<std::string> Start(const StartRequest& request) override {
    return absl::StrCat("toy-", request.task_id);
  }
  absl::StatusOr<PollResult> Poll(absl::string_view) override {
    PollResult result;
    result.state = ProviderState::kSucceeded;
    result.status_text = "DONE";
    result.progress = 1;
    return result;
  }
  absl::Status Cancel(absl::string_view) override { return absl::OkStatus(); }
  absl::Status FetchOutput(absl::string_view, const std::vector<std::string>&,
                           OutputSink& sink) override {
    return sink.Write("toy video");
  }

 private:
  Capabilities caps_;
};

BackendDescriptor ToyDescriptor() {
  BackendDescriptor d;
  d.name = "toy";
  d.secret_env = "TOY_API_KEY";
  d.default_enabled = DefaultEnabled::kWhenSecretSet;
  d.configure = [](const BackendConfig& base, const EnvReader&) -> absl::StatusOr<BackendSetup> {
    BackendSetup setup;
    setup.config = base;
    setup.config.poll_interval = absl::Milliseconds(5);
    setup.create = [](const BackendConfig&,
                      const BackendDeps&) -> absl::StatusOr<std::unique_ptr<Backend>> {
      return std::make_unique<ToyBackend>();
    };
    return setup;
  };
  return d;
}

TEST(BackendRegistryTest, DefaultNamesFollowSecretsThenAlwaysOn) {
  BackendRegistry registry;
  VT_ASSERT_OK(RegisterBuiltinBackends(registry));
  EXPECT_THAT(registry.Names(), ElementsAre("fal", "mock", "replicate", "runway"));
  EXPECT_THAT(registry.DefaultNames(FakeEnv({})), ElementsAre("mock"));
  EXPECT_THAT(registry.DefaultNames(FakeEnv({{"RUNWAYML_API_SECRET", "k"}})),
              ElementsAre("runway", "mock"));
  EXPECT_THAT(registry.DefaultNames(FakeEnv({{"RUNWAYML_API_SECRET", "k"}, {"FAL_KEY", "id:s"}})),
              ElementsAre("runway", "fal", "mock"));
  EXPECT_THAT(registry.DefaultNames(
                  FakeEnv({{"REPLICATE_API_TOKEN", "r8_k"}, {"RUNWAYML_API_SECRET", "k"}})),
              ElementsAre("runway", "replicate", "mock"));
  EXPECT_THAT(registry.DefaultNames(FakeEnv({{"REPLICATE_API_TOKEN", "r8_k"},
                                             {"RUNWAYML_API_SECRET", "k"},
                                             {"FAL_KEY", "id:s"}})),
              ElementsAre("runway", "fal", "replicate", "mock"));
  VT_ASSERT_OK(registry.Add(ToyDescriptor()));
  EXPECT_THAT(registry.DefaultNames(FakeEnv({{"TOY_API_KEY", "k"}, {"RUNWAYML_API_SECRET", "k"}})),
              ElementsAre("runway", "toy", "mock"));
  EXPECT_THAT(registry.Add(ToyDescriptor()), StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("toy")));
}

TEST(BackendRegistryTest, ConfigureChecksNamesAndSecrets) {
  BackendRegistry registry;
  VT_ASSERT_OK(RegisterBuiltinBackends(registry));
  EXPECT_THAT(registry.Configure({"sora"}, BackendConfig(), FakeEnv({})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("known backends: fal, mock, replicate, runway")));
  EXPECT_THAT(registry.Configure({"fal"}, BackendConfig(), FakeEnv({})).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("FAL_KEY")));
  absl::StatusOr<std::vector<BackendSetup>> fal =
      registry.Configure({"fal"}, BackendConfig(), FakeEnv({{"FAL_KEY", "id:secret"}}));
  VT_ASSERT_OK(fal.status());
  EXPECT_TRUE((*fal)[0].needs_http);
  EXPECT_EQ((*fal)[0].config.max_concurrency, 2);
  EXPECT_EQ((*fal)[0].config.poll_interval, absl::Seconds(5));
  EXPECT_EQ((*fal)[0].config.poll_jitter, absl::Seconds(1));
  absl::StatusOr<std::vector<BackendSetup>> no_secret =
      registry.Configure({"runway"}, BackendConfig(), FakeEnv({}));
  EXPECT_THAT(no_secret, StatusIs(absl::StatusCode::kFailedPrecondition,
                                  HasSubstr("RUNWAYML_API_SECRET")));
  absl::StatusOr<std::vector<BackendSetup>> setups = registry.Configure(
      {"runway", "mock"}, BackendConfig(), FakeEnv({{"RUNWAYML_API_SECRET", "key_secret_1"}}));
  VT_ASSERT_OK(setups.status());
  ASSERT_EQ(setups->size(), 2u);
  EXPECT_EQ((*setups)[0].config.name, "runway");
  EXPECT_TRUE((*setups)[0].needs_http);
  EXPECT_EQ((*setups)[0].config.max_concurrency, 4);
  EXPECT_EQ((*setups)[1].config.name, "mock");
  EXPECT_FALSE((*setups)[1].needs_http);
  EXPECT_EQ((*setups)[1].config.max_concurrency, 512);
}

class ToyServerTest : public videotask::testing::ServerTest {
 protected:
  void Configure(AppConfig& config) override {
    BackendRegistry registry;
    ASSERT_TRUE(RegisterBuiltinBackends(registry).ok());
    ASSERT_TRUE(registry.Add(ToyDescriptor()).ok());
    absl::StatusOr<std::vector<BackendSetup>> setups =
        registry.Configure({"toy"}, BackendConfig(), FakeEnv({{"TOY_API_KEY", "k"}}));
    ASSERT_TRUE(setups.ok()) << setups.status();
    config.backends.push_back(std::move((*setups)[0]));
  }
};

TEST_F(ToyServerTest, ATaskCompletesThroughAToyBackend) {
  videotask::v1::SubmitTaskRequest request = PngRequest("toy_01.png");
  request.mutable_spec()->set_backend("toy");
  request.mutable_spec()->set_ratio("9:16");
  grpc::ClientContext refused_ctx;
  videotask::v1::Task refused;
  grpc::Status status = stub_->SubmitTask(&refused_ctx, request, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("spec.ratio \"9:16\" is not offered by model toy-1"));

  request.mutable_spec()->clear_ratio();
  grpc::ClientContext ctx;
  videotask::v1::Task task;
  ASSERT_TRUE(stub_->SubmitTask(&ctx, request, &task).ok());
  EXPECT_EQ(task.spec().model(), "toy-1");
  videotask::v1::Task done = WaitTerminal(task.id());
  EXPECT_EQ(done.state(), videotask::v1::SUCCEEDED) << done.error().message();
  EXPECT_EQ(done.output_size_bytes(), 9);
}

}  // namespace
}  // namespace videotask::backends
