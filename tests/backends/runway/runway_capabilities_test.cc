// The runway capability table and the capability check, without any traffic.
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/random/random.h"
#include "backends/api/capabilities.h"
#include "backends/http/curl_transport.h"
#include "backends/runway/runway_backend.h"
#include "common/clock.h"
#include "tests/testing/status_matchers.h"

namespace videotask::backends {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::videotask::testing::IsOk;
using ::videotask::testing::StatusIs;

class RunwayValidateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VT_ASSERT_OK_AND_ASSIGN(transport_, CurlTransport::Create());
    BackendConfig config;
    config.max_image_bytes = 10'000;
    VT_ASSERT_OK_AND_ASSIGN(backend_, RunwayBackend::Create(config, {"", "key_test"},
                                                            BackendDeps{clock_, rng_, transport_.get()}));
  }

  // The generic capability check, on runway's table.
  absl::Status Check(const StartRequest& request) const {
    return ResolveAgainstCapabilities(backend_->capabilities(), kRunwayName, request).status();
  }

  StartRequest Request(const std::string& model, const std::string& ratio, int duration) const {
    StartRequest request;
    request.model = model;
    request.ratio = ratio;
    request.duration_seconds = duration;
    request.image_bytes = "\x89PNG....";
    request.image_mime_type = "image/png";
    request.prompt_text = "a prompt";
    return request;
  }

  FakeClock clock_;
  absl::BitGen rng_;
  std::unique_ptr<CurlTransport> transport_;
  std::unique_ptr<RunwayBackend> backend_;
};

TEST_F(RunwayValidateTest, CapabilityTable) {
  const Capabilities& caps = backend_->capabilities();
  EXPECT_EQ(caps.default_model, "gen4_turbo");
  EXPECT_EQ(caps.max_image_bytes, 10'000);
  EXPECT_THAT(caps.image_mime_types, ElementsAre("image/png", "image/jpeg", "image/webp"));
  const ModelCapabilities* turbo = caps.FindModel("gen4_turbo");
  ASSERT_NE(turbo, nullptr);
  EXPECT_THAT(turbo->ratios, ElementsAre("1280:720", "720:1280", "1104:832", "832:1104",
                                         "960:960", "1584:672"));
  EXPECT_EQ(turbo->ratio_aliases.at("16:9"), "1280:720");
  EXPECT_EQ(turbo->ratio_aliases.at("21:9"), "1584:672");
  EXPECT_THAT(turbo->durations, ElementsAre(2, 3, 4, 5, 6, 7, 8, 9, 10));
  EXPECT_EQ(turbo->default_duration_seconds, 4);
  EXPECT_EQ(turbo->max_prompt_utf16, 1000);
  EXPECT_FALSE(turbo->prompt_required);
  EXPECT_EQ(turbo->credits_per_second, 5);
  ASSERT_NE(caps.FindModel("gen4.5"), nullptr);
  EXPECT_TRUE(caps.FindModel("gen4.5")->prompt_required);
  EXPECT_THAT(caps.FindModel("veo3.1")->durations, ElementsAre(4, 6, 8));
  EXPECT_THAT(caps.FindModel("veo3.1_fast")->ratios,
              ElementsAre("1280:720", "720:1280", "1080:1920", "1920:1080"));
  EXPECT_THAT(caps.FindModel("veo3")->durations, ElementsAre(8));
  EXPECT_THAT(caps.FindModel("gemini_omni_flash")->ratios, ElementsAre("1280:720", "720:1280"));
  EXPECT_THAT(caps.FindModel("gemini_omni_flash")->durations, ElementsAre(3, 4, 5, 6, 7, 8, 9, 10));
  EXPECT_EQ(caps.FindModel("gen3a_turbo"), nullptr);
  for (const ModelCapabilities& m : caps.models) {
    EXPECT_NE(std::find(m.ratios.begin(), m.ratios.end(), m.default_ratio), m.ratios.end());
    EXPECT_NE(std::find(m.durations.begin(), m.durations.end(), m.default_duration_seconds),
              m.durations.end());
  }
}

TEST_F(RunwayValidateTest, AcceptsWhatEachModelTakes) {
  VT_EXPECT_OK(Check(Request("gen4_turbo", "1584:672", 10)));
  VT_EXPECT_OK(Check(Request("gen4.5", "960:960", 2)));
  VT_EXPECT_OK(Check(Request("veo3.1", "1080:1920", 6)));
  VT_EXPECT_OK(Check(Request("veo3", "1920:1080", 8)));
  VT_EXPECT_OK(Check(Request("gemini_omni_flash", "720:1280", 3)));
}

TEST_F(RunwayValidateTest, RefusesWithTheFieldAndTheAllowedValues) {
  EXPECT_THAT(Check(Request("gen3a_turbo", "1280:720", 4)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("spec.model")));
  EXPECT_THAT(Check(Request("gen4_turbo", "7:5", 4)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1280:720, 720:1280")));
  EXPECT_THAT(Check(Request("veo3", "1280:720", 4)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("spec.duration_seconds")));
  EXPECT_THAT(Check(Request("veo3.1", "960:960", 4)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("spec.ratio")));
  StartRequest no_prompt = Request("gen4.5", "1280:720", 5);
  no_prompt.prompt_text.clear();
  EXPECT_THAT(Check(no_prompt),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("required")));
  StartRequest long_prompt = Request("gen4_turbo", "1280:720", 4);
  long_prompt.prompt_text = std::string(1001, 'a');
  EXPECT_THAT(Check(long_prompt),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1000")));
  long_prompt.prompt_text = std::string(1000, 'a');
  VT_EXPECT_OK(Check(long_prompt));
  StartRequest gif = Request("gen4_turbo", "1280:720", 4);
  gif.image_mime_type = "image/gif";
  EXPECT_THAT(Check(gif),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("image/png")));
  StartRequest big = Request("gen4_turbo", "1280:720", 4);
  big.image_bytes = std::string(10'001, 'x');
  EXPECT_THAT(Check(big),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("10000")));
  StartRequest both = Request("gen4_turbo", "1280:720", 4);
  both.image_uri = "https://example.com/a.png";
  EXPECT_THAT(Check(both), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exactly one")));
  StartRequest file_uri = Request("gen4_turbo", "1280:720", 4);
  file_uri.image_bytes.clear();
  file_uri.image_uri = "file:///tmp/a.png";
  EXPECT_THAT(Check(file_uri),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("https://")));
  StartRequest threshold = Request("gen4_turbo", "1280:720", 4);
  threshold.public_figure_threshold = "high";
  EXPECT_THAT(Check(threshold),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("auto, low")));
}

TEST_F(RunwayValidateTest, StartRefusesAnInvalidRequestWithoutTraffic) {
  // The base URL is the real provider's; validation fails before any send.
  EXPECT_THAT(backend_->Start(Request("gen4_turbo", "7:5", 4)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("spec.ratio")));
}

}  // namespace
}  // namespace videotask::backends
