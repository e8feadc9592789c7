// The fal wire format as pure functions: request bodies per model, the
// stored provider task id, and the parsing of every answer.
#include "backends/fal/fal_wire.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/time/clock.h"
#include "backends/api/errors.h"
#include "backends/fal/fal_backend.h"
#include "backends/fal/fal_models.h"
#include "common/status_macros.h"
#include "tests/testing/status_matchers.h"

namespace videotask::backends::fal_internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::videotask::testing::IsOk;
using ::videotask::testing::StatusIs;

HttpResponse Answer(int status, std::string body,
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

StartRequest Request(std::string model) {
  StartRequest r;
  r.task_id = "t1";
  r.model = std::move(model);
  r.image_uri = "https://images.example/a.png";
  r.prompt_text = "slow zoom";
  return r;
}

absl::StatusOr<Json> Body(const StartRequest& request) {
  Capabilities caps = FalCapabilities(16 << 20);
  VT_ASSIGN_OR_RETURN(ResolvedOptions resolved, ResolveAgainstCapabilities(caps, "fal", request));
  return CreateBody(*caps.FindModel(resolved.model), request, resolved,
                    "data:image/png;base64,AA==");
}

TEST(FalModelsTest, DeclaresTheThreeModelsWithOptions) {
  Capabilities caps = FalCapabilities(1000);
  ASSERT_EQ(caps.models.size(), 3u);
  EXPECT_EQ(caps.default_model, kFalKling21Standard);
  const ModelCapabilities* veo = caps.FindModel(kFalVeo31Fast);
  ASSERT_NE(veo, nullptr);
  EXPECT_THAT(veo->durations, ElementsAre(4, 6, 8));
  EXPECT_EQ(veo->ratio_aliases.at("1280:720"), "16:9");
  ASSERT_NE(veo->FindOption("safety_tolerance"), nullptr);
  EXPECT_EQ(veo->FindOption("safety_tolerance")->type, ModelOption::Type::kEnum);
  EXPECT_EQ(caps.FindModel(kFalKling21Standard)->FindOption("cfg_scale")->max, 1);
  EXPECT_EQ(caps.FindModel(kFalHailuo02Standard)->FindOption("cfg_scale"), nullptr);
}

TEST(FalModelsTest, KlingBodyUsesItsOwnNamesAndTypes) {
  StartRequest r = Request(kFalKling21Standard);
  r.duration_seconds = 10;
  r.model_options = {{"cfg_scale", "0.25"}, {"negative_prompt", "blur"}};
  VT_ASSERT_OK_AND_ASSIGN(Json body, Body(r));
  EXPECT_EQ(body, Json::parse(R"({"prompt": "slow zoom", "image_url": "data:image/png;base64,AA==",
                                 "duration": "10", "cfg_scale": 0.25,
                                 "negative_prompt": "blur"})"));
}

TEST(FalModelsTest, VeoBodyHasRatioSeedAndBooleans) {
  StartRequest r = Request(kFalVeo31Fast);
  r.ratio = "720:1280";
  r.seed = 42;
  r.model_options = {{"generate_audio", "false"}, {"safety_tolerance", "2"}};
  VT_ASSERT_OK_AND_ASSIGN(Json body, Body(r));
  EXPECT_EQ(body["aspect_ratio"], "9:16");
  EXPECT_EQ(body["duration"], "8s");
  EXPECT_EQ(body["seed"], 42);
  EXPECT_EQ(body["generate_audio"], false);
  EXPECT_EQ(body["safety_tolerance"], "2");
}

TEST(FalModelsTest, HailuoDefaultsAndRefusals) {
  StartRequest r = Request(kFalHailuo02Standard);
  r.model_options = {{"prompt_optimizer", "true"}, {"resolution", "512P"}};
  VT_ASSERT_OK_AND_ASSIGN(Json body, Body(r));
  EXPECT_EQ(body["duration"], "6");
  EXPECT_EQ(body["prompt_optimizer"], true);
  EXPECT_FALSE(body.contains("aspect_ratio"));
  Capabilities caps = FalCapabilities(1000);
  r.seed = 7;
  EXPECT_THAT(CheckFalRequest(caps, r),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("spec.seed")));
  r.seed.reset();
  r.model_options = {{"end_image_url", "http://plain.example/x.png"}};
  EXPECT_THAT(CheckFalRequest(caps, r),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("end_image_url")));
  r.model_options = {{"cfg_scale", "0.5"}};
  EXPECT_THAT(Body(r).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cfg_scale")));
}

TEST(FalWireTest, TaskIdRoundTripsAndRebuildsTheQueuePaths) {
  std::optional<AppRef> ref = AppOfModel(kFalKling21Standard);
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(ref->owner, "fal-ai");
  EXPECT_EQ(ref->app, "kling-video");
  ref->request_id = "80e732af-2b3c-4d5e-8f90-a1b2c3d4e5f6";
  const std::string id = EncodeTaskId(*ref);
  EXPECT_EQ(id, "fal-ai/kling-video:80e732af-2b3c-4d5e-8f90-a1b2c3d4e5f6");
  std::optional<AppRef> back = DecodeTaskId(id);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(RequestPath(*back, "/status"),
            "/fal-ai/kling-video/requests/80e732af-2b3c-4d5e-8f90-a1b2c3d4e5f6/status");
  for (const char* bad : {"", "x", "a/b", "a:b", "a/b/c:d", "a/b:../x", "a/b:c d", "a/ b:c"}) {
    EXPECT_FALSE(DecodeTaskId(bad).has_value()) << bad;
  }
  EXPECT_FALSE(AppOfModel("kling").has_value());
  EXPECT_FALSE(AppOfModel("fal-ai/../x").has_value());
}

TEST(FalWireTest, SubmitAnswer) {
  EXPECT_EQ(ParseSubmitAnswer(R"({"status":"IN_QUEUE","request_id":"abc-1","queue_position":0})"),
            "abc-1");
  EXPECT_FALSE(ParseSubmitAnswer(R"({"status":"IN_QUEUE"})").has_value());
  EXPECT_FALSE(ParseSubmitAnswer(R"({"request_id":"a b"})").has_value());
  EXPECT_FALSE(ParseSubmitAnswer(R"({"request_id":7})").has_value());
  EXPECT_FALSE(ParseSubmitAnswer("{not json").has_value());
}

TEST(FalWireTest, StatusAnswerShowsTheQueuePosition) {
  VT_ASSERT_OK_AND_ASSIGN(QueueStatus queued,
                          ParseStatusAnswer(R"({"status":"IN_QUEUE","queue_position":3})"));
  PollResult pending = PendingResult(queued);
  EXPECT_EQ(pending.state, ProviderState::kPending);
  EXPECT_EQ(pending.status_text, "IN_QUEUE (position 3)");
  VT_ASSERT_OK_AND_ASSIGN(QueueStatus running, ParseStatusAnswer(R"({"status":"IN_PROGRESS"})"));
  EXPECT_EQ(PendingResult(running).state, ProviderState::kRunning);
  EXPECT_THAT(ParseStatusAnswer(R"({"status":"FAILED"})").status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("unknown status")));
  EXPECT_THAT(ParseStatusAnswer("[]").status(),
              StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
}

TEST(FalWireTest, ResultSucceededOrFailedWithTheProvidersWords) {
  const absl::Time now = absl::Now();
  VT_ASSERT_OK_AND_ASSIGN(
      PollResult ok,
      ParseResultAnswer(Answer(200, R"({"video":{"url":"https://v3.fal.media/files/x.mp4"}})"),
                        now));
  EXPECT_EQ(ok.state, ProviderState::kSucceeded);
  EXPECT_THAT(ok.output_urls, ElementsAre("https://v3.fal.media/files/x.mp4"));

  VT_ASSERT_OK_AND_ASSIGN(
      PollResult flagged,
      ParseResultAnswer(Answer(422,
                               R"({"detail":[{"loc":["body","prompt"],"msg":"flagged by the filter",
                                   "type":"content_policy_violation"}]})",
                               {{"x-fal-retryable", "true"}}),
                        now));
  EXPECT_EQ(flagged.state, ProviderState::kFailed);
  EXPECT_EQ(flagged.failure_code, "content_policy_violation");
  EXPECT_EQ(flagged.failure_message, "prompt: flagged by the filter");
  EXPECT_FALSE(flagged.failure_retryable);

  VT_ASSERT_OK_AND_ASSIGN(
      PollResult timeout,
      ParseResultAnswer(
          Answer(504, R"({"detail":"Request timed out","error_type":"request_timeout"})",
                 {{"x-fal-request-timeout-type", "user"}}),
          now));
  EXPECT_EQ(timeout.state, ProviderState::kFailed);
  EXPECT_EQ(timeout.failure_code, "request_timeout");

  absl::StatusOr<PollResult> busy = ParseResultAnswer(Answer(503, "", {{"retry-after", "4"}}), now);
  EXPECT_THAT(busy.status(), StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_EQ(RetryAfter(busy.status()), absl::Seconds(4));
  EXPECT_THAT(ParseResultAnswer(Answer(200, R"({"video":{}})"), now).status(),
              StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
}

TEST(FalWireTest, AnswersMapToStatuses) {
  const absl::Time now = absl::Now();
  absl::Status limited = StatusFromAnswer(
      "submit", Answer(429, R"({"detail":"queue full"})", {{"retry-after", "2"}}), now);
  EXPECT_THAT(limited, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("queue full")));
  EXPECT_TRUE(IsRetryable(limited));
  EXPECT_EQ(RetryAfter(limited), absl::Seconds(2));
  EXPECT_EQ(HttpStatus(limited), 429);
  EXPECT_FALSE(MaybeSent(limited));
  EXPECT_THAT(StatusFromAnswer("submit", Answer(401, R"({"detail":"No user found"})"), now),
              StatusIs(absl::StatusCode::kUnauthenticated, ::testing::_));
  EXPECT_THAT(
      StatusFromAnswer(
          "submit", Answer(403, R"({"detail":"User is locked. Reason: Exhausted balance."})"), now),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("Exhausted balance")));
  EXPECT_THAT(StatusFromAnswer("submit", Answer(502, "<html>"), now),
              StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_THAT(
      StatusFromAnswer(
          "submit",
          Answer(
              422,
              R"({"detail":[{"loc":["body","x"],"msg":"Extra inputs are not permitted","type":"extra_forbidden"}]})"),
          now),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x: Extra inputs")));
  ProviderError long_error =
      ParseProviderError(Answer(400, Json{{"detail", std::string(2000, 'x')}}.dump()));
  EXPECT_LE(long_error.message.size(), 510u);
}

}  // namespace
}  // namespace videotask::backends::fal_internal
