// The Replicate wire format and model table as pure functions: create
// bodies per model, option typing, answer parsing, HTTP answer mapping.
#include "backends/replicate/replicate_wire.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/random/random.h"
#include "backends/api/errors.h"
#include "backends/replicate/replicate_backend.h"
#include "backends/replicate/replicate_models.h"
#include "common/clock.h"
#include "tests/testing/status_matchers.h"

ABSL_DECLARE_FLAG(absl::Duration, replicate_poll_interval);
ABSL_DECLARE_FLAG(std::string, replicate_base_url);

namespace videotask::backends::replicate_internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::videotask::testing::StatusIs;

StartRequest Request(const std::string& model) {
  StartRequest request;
  request.task_id = "t-1";
  request.model = model;
  request.image_bytes = "\x89PNG\r\n\x1a\nxyz";
  request.image_mime_type = "image/png";
  request.prompt_text = "slow dolly in";
  return request;
}

Json Body(const StartRequest& request, const std::string& ratio, int duration) {
  const ReplicateModel* model = FindReplicateModel(request.model);
  EXPECT_NE(model, nullptr);
  ResolvedOptions resolved{request.model, ratio, duration};
  absl::StatusOr<Json> body = CreateBody(request, resolved, *model, "data:image/png;base64,AA==");
  EXPECT_TRUE(body.ok()) << body.status();
  return body.ok() ? *body : Json();
}

TEST(ReplicateModelsTest, CuratedModelsDeclareRatiosDurationsAndOptions) {
  Capabilities caps = ReplicateCapabilities(16 << 20);
  EXPECT_EQ(caps.default_model, "kwaivgi/kling-v2.1");
  std::vector<std::string> names;
  for (const ModelCapabilities& m : caps.models) {
    names.push_back(m.name);
    EXPECT_FALSE(m.ratios.empty()) << m.name;
    EXPECT_FALSE(m.durations.empty()) << m.name;
    EXPECT_GT(m.max_prompt_utf16, 0) << m.name;
    EXPECT_TRUE(m.prompt_required) << m.name;
    EXPECT_FALSE(m.options.empty()) << m.name;
    EXPECT_NE(FindReplicateModel(m.name), nullptr);
  }
  EXPECT_THAT(names, ElementsAre("kwaivgi/kling-v2.1", "minimax/hailuo-02", "google/veo-3-fast"));
  const ModelCapabilities* veo = caps.FindModel("google/veo-3-fast");
  ASSERT_NE(veo, nullptr);
  EXPECT_EQ(ResolveRatio(*veo, "1280:720").value(), "16:9");
  EXPECT_EQ(ResolveRatio(*veo, "").value(), "16:9");
  EXPECT_THAT(ResolveRatio(*veo, "4:3"), StatusIs(absl::StatusCode::kInvalidArgument,
                                                  HasSubstr("spec.ratio")));
  const ModelCapabilities* kling = caps.FindModel("kwaivgi/kling-v2.1");
  EXPECT_EQ(ResolveRatio(*kling, "").value(), kReplicateImageRatio);
  EXPECT_EQ(ResolveDuration(*kling, 0).value(), 5);
  ASSERT_NE(kling->FindOption("mode"), nullptr);
  EXPECT_EQ(kling->FindOption("mode")->type, ModelOption::Type::kEnum);
  EXPECT_EQ(kling->FindOption("seed"), nullptr);
}

TEST(ReplicateWireTest, EachModelGetsItsOwnInputNames) {
  Json kling = Body(Request("kwaivgi/kling-v2.1"), "auto", 10);
  EXPECT_EQ(kling, Json::parse(R"({"input": {"prompt": "slow dolly in",
      "start_image": "data:image/png;base64,AA==", "duration": 10}})"));

  Json hailuo = Body(Request("minimax/hailuo-02"), "auto", 6);
  EXPECT_EQ(hailuo["input"]["first_frame_image"], "data:image/png;base64,AA==");
  EXPECT_FALSE(hailuo["input"].contains("aspect_ratio"));

  StartRequest veo_request = Request("google/veo-3-fast");
  veo_request.seed = 4'000'000'000u;
  Json veo = Body(veo_request, "9:16", 8);
  EXPECT_EQ(veo["input"]["image"], "data:image/png;base64,AA==");
  EXPECT_EQ(veo["input"]["aspect_ratio"], "9:16");
  EXPECT_EQ(veo["input"]["seed"], 4'000'000'000u);
  EXPECT_EQ(veo.size(), 1u);  // only "input": no Prefer, no version, no webhook
}

TEST(ReplicateWireTest, OptionsAreTypedAsDeclared) {
  StartRequest request = Request("google/veo-3-fast");
  request.model_options = {{"generate_audio", "false"},
                           {"negative_prompt", "text, watermark"},
                           {"resolution", "720p"}};
  Json body = Body(request, "16:9", 8);
  EXPECT_EQ(body["input"]["generate_audio"], false);
  EXPECT_EQ(body["input"]["negative_prompt"], "text, watermark");
  EXPECT_EQ(body["input"]["resolution"], "720p");

  ModelOption number;
  number.name = "cfg_scale";
  number.type = ModelOption::Type::kNumber;
  EXPECT_EQ(OptionValue(number, "0.5").value(), Json(0.5));
  EXPECT_THAT(OptionValue(number, "x"), StatusIs(absl::StatusCode::kInvalidArgument,
                                                 HasSubstr("spec.model_options.cfg_scale")));
  ModelOption integer;
  integer.name = "steps";
  integer.type = ModelOption::Type::kInteger;
  EXPECT_EQ(OptionValue(integer, "12").value(), Json(12));
  EXPECT_FALSE(OptionValue(integer, "1.5").ok());
}

TEST(ReplicateWireTest, RefusesWhatTheModelDoesNotTake) {
  StartRequest seeded = Request("kwaivgi/kling-v2.1");
  seeded.seed = 7;
  ResolvedOptions resolved{seeded.model, "auto", 5};
  EXPECT_THAT(CreateBody(seeded, resolved, *FindReplicateModel(seeded.model), "x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("spec.seed")));
  StartRequest unknown = Request("kwaivgi/kling-v2.1");
  unknown.model_options = {{"prompt", "override"}};
  EXPECT_THAT(CreateBody(unknown, resolved, *FindReplicateModel(unknown.model), "x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("spec.model_options.prompt")));
}

TEST(ReplicateWireTest, ParsesPredictions) {
  absl::StatusOr<Prediction> p = ParsePrediction(
      R"({"id": "gm3qorzdhgbfurvjtvhg6dckhu", "status": "succeeded",
          "output": "https://replicate.delivery/xezq/out.mp4", "error": null})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->state, ProviderState::kSucceeded);
  PollResult result = ToPollResult(*p);
  EXPECT_THAT(result.output_urls, ElementsAre("https://replicate.delivery/xezq/out.mp4"));
  EXPECT_EQ(result.status_text, "succeeded");
  EXPECT_EQ(result.progress, 1);

  p = ParsePrediction(R"({"id": "a", "status": "succeeded", "output": ["u1", 3, "u2"]})");
  ASSERT_TRUE(p.ok());
  EXPECT_THAT(p->output_urls, ElementsAre("u1", "u2"));

  p = ParsePrediction(R"j({"id": "a", "status": "failed",
      "error": "The input or output was flagged as sensitive. Please try again. (E005)"})j");
  ASSERT_TRUE(p.ok());
  result = ToPollResult(*p);
  EXPECT_EQ(result.state, ProviderState::kFailed);
  EXPECT_EQ(result.failure_code, "E005");
  EXPECT_FALSE(result.failure_retryable);
  EXPECT_THAT(result.failure_message, HasSubstr("flagged as sensitive"));

  result = ToPollResult(*ParsePrediction(
      R"j({"id": "a", "status": "failed", "error": "Prediction interrupted; please retry (code: PA)"})j"));
  EXPECT_TRUE(result.failure_retryable);

  result = ToPollResult(*ParsePrediction(R"({"id": "a", "status": "aborted"})"));
  EXPECT_EQ(result.state, ProviderState::kFailed);
  EXPECT_EQ(result.status_text, "aborted");
  result = ToPollResult(*ParsePrediction(R"({"id": "a", "status": "canceled"})"));
  EXPECT_EQ(result.state, ProviderState::kCancelled);
  result = ToPollResult(*ParsePrediction(R"({"id": "a", "status": "processing"})"));
  EXPECT_EQ(result.state, ProviderState::kRunning);
  result = ToPollResult(*ParsePrediction(R"({"id": "a", "status": "starting"})"));
  EXPECT_EQ(result.state, ProviderState::kPending);

  // Unknown words keep waiting; their text is cleaned and bounded.
  p = ParsePrediction(R"({"id": "a", "status": "queued\nnow"})");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->state.has_value());
  EXPECT_EQ(ToPollResult(*p).state, ProviderState::kPending);
  EXPECT_EQ(p->status, "queued?now");

  for (const char* bad : {"", "[]", "{\"id\": \"a\"}", "{\"id\": \"a b\", \"status\": \"starting\"}",
                          "{\"id\": 5, \"status\": \"starting\"}", "<html>"}) {
    EXPECT_THAT(ParsePrediction(bad), StatusIs(absl::StatusCode::kUnavailable, ::testing::_))
        << bad;
  }
}

TEST(ReplicateWireTest, MapsHttpAnswers) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  HttpResponse r;
  r.status = 422;
  r.body = R"({"title":"Input validation failed","status":422,
      "detail":"- input.duration: duration must be one of the following: 5, 10\n"})";
  absl::Status s = StatusFromAnswer("create prediction", r, now);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument,
                          HasSubstr("duration must be one of the following")));
  EXPECT_EQ(HttpStatus(s), 422);

  r.status = 402;
  r.body = R"({"title":"Insufficient credit","detail":"You have insufficient credit","status":402})";
  EXPECT_THAT(StatusFromAnswer("x", r, now),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("insufficient credit")));

  r.status = 401;
  EXPECT_THAT(StatusFromAnswer("x", r, now),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("API token")));

  r.status = 429;
  r.body = R"({"detail":"Request was throttled.","status":429,"retry_after":3})";
  s = StatusFromAnswer("x", r, now);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("throttled")));
  EXPECT_EQ(RetryAfter(s), absl::Seconds(3));
  r.headers = {{"retry-after", "7"}};
  EXPECT_EQ(RetryAfter(StatusFromAnswer("x", r, now)), absl::Seconds(7));
  r.headers = {{"retry-after", "Fri, 15 Jan 2027 08:00:10 GMT"}};
  EXPECT_EQ(ParseRetryAfter(r, absl::FromCivil(absl::CivilSecond(2027, 1, 15, 8, 0, 0),
                                                 absl::UTCTimeZone())),
            absl::Seconds(10));
  r.headers = {{"retry-after", "-1"}};
  r.body.clear();
  EXPECT_FALSE(ParseRetryAfter(r, now).has_value());

  for (int code : {500, 502, 503, 504}) {
    r.status = code;
    s = StatusFromAnswer("x", r, now);
    EXPECT_TRUE(IsRetryable(s)) << code;
    EXPECT_FALSE(MaybeSent(s)) << code;
  }
}

TEST(ReplicateWireTest, PathsIdsAndHosts) {
  EXPECT_EQ(CreatePath("kwaivgi/kling-v2.1"), "/v1/models/kwaivgi/kling-v2.1/predictions");
  EXPECT_EQ(CreatePath("a b/c?"), "/v1/models/a%20b/c%3F/predictions");
  EXPECT_FALSE(CreatePath("kling").has_value());
  EXPECT_FALSE(CreatePath("a/b/c").has_value());
  EXPECT_TRUE(IsPlausiblePredictionId("gm3qorzdhgbfurvjtvhg6dckhu"));
  EXPECT_FALSE(IsPlausiblePredictionId(std::string(129, 'a')));
  EXPECT_FALSE(IsPlausiblePredictionId("a\nb"));
  EXPECT_TRUE(IsReplicateDeliveryUrl("https://replicate.delivery/xezq/a.mp4"));
  EXPECT_TRUE(IsReplicateDeliveryUrl("https://pbxt.replicate.delivery/a.mp4"));
  EXPECT_FALSE(IsReplicateDeliveryUrl("https://replicate.delivery.evil.com/a.mp4"));
  EXPECT_FALSE(IsReplicateDeliveryUrl("https://user@evil.com/replicate.delivery"));
  EXPECT_FALSE(IsReplicateDeliveryUrl("http://replicate.delivery/a.mp4"));
  EXPECT_EQ(FailureCode("flagged (E005)"), "E005");
  EXPECT_EQ(FailureCode("Prediction interrupted; please retry (code: PA)"), "");
  EXPECT_TRUE(IsModerationFailure("NSFW content detected"));
  EXPECT_FALSE(IsModerationFailure("CUDA out of memory"));
  EXPECT_EQ(ParseFileUrl(R"({"id":"f","urls":{"get":"https://api.replicate.com/v1/files/f"}})"),
            "https://api.replicate.com/v1/files/f");
  EXPECT_FALSE(ParseFileUrl(R"({"id":"f","urls":{"get":"file:///etc/passwd"}})").has_value());
}

TEST(ReplicateBackendValidateTest, SeedAndHailuoTenSeconds) {
  FakeClock clock;
  absl::BitGen rng;
  class NoHttp final : public HttpTransport {
    absl::StatusOr<HttpResponse> Send(const HttpRequest&) override {
      return absl::UnavailableError("no");
    }
    absl::StatusOr<HttpResponse> SendStreaming(const HttpRequest&, const BodySink&) override {
      return absl::UnavailableError("no");
    }
  } http;
  BackendConfig config;
  auto backend = ReplicateBackend::Create(config, {"http://127.0.0.1:9", "r8_token"},
                                          BackendDeps{clock, rng, &http});
  ASSERT_TRUE(backend.ok()) << backend.status();
  StartRequest seeded = Request("minimax/hailuo-02");
  seeded.seed = 1;
  seeded.duration_seconds = 6;
  EXPECT_THAT((*backend)->Validate(seeded),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("spec.seed")));
  StartRequest ten = Request("minimax/hailuo-02");
  ten.duration_seconds = 10;
  EXPECT_THAT((*backend)->Validate(ten),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("768p")));
  ten.model_options = {{"resolution", "768p"}};
  VT_EXPECT_OK((*backend)->Validate(ten));
  StartRequest veo = Request("google/veo-3-fast");
  veo.seed = 1;
  VT_EXPECT_OK((*backend)->Validate(veo));
}

}  // namespace
}  // namespace videotask::backends::replicate_internal

namespace videotask::backends {
namespace {

using ::videotask::testing::StatusIs;

TEST(ReplicateDescriptorTest, FlagsAndSecret) {
  BackendDescriptor d = ReplicateDescriptor();
  EXPECT_EQ(d.name, "replicate");
  EXPECT_EQ(d.secret_env, "REPLICATE_API_TOKEN");
  EXPECT_EQ(d.default_enabled, DefaultEnabled::kWhenSecretSet);
  EXPECT_TRUE(d.needs_http);
  BackendConfig base;
  base.name = "replicate";
  EnvReader env = [](absl::string_view name) {
    return name == "REPLICATE_API_TOKEN" ? std::string("r8_k") : std::string();
  };
  absl::StatusOr<BackendSetup> setup = d.configure(base, env);
  ASSERT_TRUE(setup.ok()) << setup.status();
  EXPECT_EQ(setup->config.max_concurrency, 4);
  EXPECT_EQ(setup->config.min_submit_interval, absl::ZeroDuration());
  EXPECT_EQ(setup->config.poll_interval, absl::Seconds(5));
  EXPECT_EQ(setup->config.poll_jitter, absl::Seconds(1));
  EXPECT_TRUE(setup->needs_http);

  absl::FlagSaver saver;
  absl::SetFlag(&FLAGS_replicate_poll_interval, absl::Seconds(1));
  EXPECT_THAT(d.configure(base, env), StatusIs(absl::StatusCode::kInvalidArgument,
                                               ::testing::HasSubstr("at least 5s")));
  absl::SetFlag(&FLAGS_replicate_base_url, "http://127.0.0.1:8080");
  EXPECT_TRUE(d.configure(base, env).ok());
}

}  // namespace
}  // namespace videotask::backends
