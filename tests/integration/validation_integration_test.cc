// Every kind of bad SubmitTask input gets INVALID_ARGUMENT naming the field
// and what is allowed, and the server keeps serving with nothing stored.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/server_fixture.h"

namespace videotask::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class ValidationTest : public ServerTest {
 protected:
  void Configure(AppConfig& config) override {
    image_root_ = tmp_.path() + "/images";
    config.image_root = image_root_;
    config.max_image_bytes = 64 << 10;
    std::string outside = tmp_.path() + "/secret.png";
    mkdir(image_root_.c_str(), 0755);
    mkdir((image_root_ + "/sub").c_str(), 0755);
    std::ofstream(image_root_ + "/sub/ok_01.png", std::ios::binary) << TinyPng(1);
    std::ofstream(outside, std::ios::binary) << TinyPng(2);
    unlink((image_root_ + "/escape.png").c_str());
    symlink(outside.c_str(), (image_root_ + "/escape.png").c_str());
  }

  // Submits and expects INVALID_ARGUMENT whose message holds every needle.
  void ExpectInvalid(const v1::SubmitTaskRequest& request,
                     std::initializer_list<std::string> needles) {
    grpc::ClientContext ctx;
    v1::Task task;
    grpc::Status status = stub_->SubmitTask(&ctx, request, &task);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << status.error_message();
    for (const std::string& needle : needles) {
      EXPECT_THAT(status.error_message(), HasSubstr(needle));
    }
  }

  std::string image_root_;
};

TEST_F(ValidationTest, SpecAndImageSource) {
  ExpectInvalid(v1::SubmitTaskRequest(), {"spec is required"});
  v1::SubmitTaskRequest request = PngRequest("a.png");
  request.mutable_spec()->mutable_image()->clear_content();
  ExpectInvalid(request, {"spec.image", "exactly one source"});
}

TEST_F(ValidationTest, BackendAndModel) {
  v1::SubmitTaskRequest request = PngRequest("a.png");
  request.mutable_spec()->set_backend("sora");
  ExpectInvalid(request, {"spec.backend", "\"sora\"", "allowed: mock"});
  request = PngRequest("a.png");
  request.mutable_spec()->set_model("gen3a_turbo");
  ExpectInvalid(request, {"spec.model", "gen3a_turbo", "allowed: gen4_turbo"});
}

TEST_F(ValidationTest, ModelOptionsTheModelDoesNotTake) {
  v1::SubmitTaskRequest request = PngRequest("a.png");
  (*request.mutable_spec()->mutable_model_options())["cfg_scale"] = "0.5";
  ExpectInvalid(request, {"spec.model_options", "\"cfg_scale\"", "gen4_turbo", "allowed: none"});
}

TEST_F(ValidationTest, RatioAndDuration) {
  v1::SubmitTaskRequest request = PngRequest("a.png");
  request.mutable_spec()->set_ratio("2:1");
  ExpectInvalid(request, {"spec.ratio", "1280:720", "16:9=1280:720"});
  request = PngRequest("a.png");
  request.mutable_spec()->set_duration_seconds(11);
  ExpectInvalid(request, {"spec.duration_seconds", "11", "2..10"});
  request.mutable_spec()->set_duration_seconds(-3);
  ExpectInvalid(request, {"spec.duration_seconds"});
}

TEST_F(ValidationTest, PromptLengthInUtf16Units) {
  v1::SubmitTaskRequest request = PngRequest("a.png");
  std::string emoji = "\xF0\x9F\x8E\xA5";  // 2 UTF-16 units each
  std::string prompt;
  for (int i = 0; i < 501; ++i) prompt += emoji;
  request.mutable_spec()->set_prompt_text(prompt);
  ExpectInvalid(request, {"spec.prompt_text", "1002 UTF-16 code units", "1..1000"});
  // (Invalid UTF-8 cannot be sent: proto3 string fields refuse it on the
  // client already; common/text_test covers the server's own check.)
}

TEST_F(ValidationTest, ImageBytesAreSniffedAndLimited) {
  v1::SubmitTaskRequest request = PngRequest("a.png");
  request.mutable_spec()->mutable_image()->set_content("GIF89a not allowed");
  ExpectInvalid(request, {"spec.image.content", "PNG, JPEG or WebP"});
  std::string png = TinyPng();
  request.mutable_spec()->mutable_image()->set_content(png.substr(0, png.size() - 5));
  ExpectInvalid(request, {"spec.image.content", "truncated"});
  request.mutable_spec()->mutable_image()->set_content(png + std::string(70 << 10, 'x'));
  ExpectInvalid(request, {"spec.image.content", "limit is 65536"});
  request = PngRequest("a.png");
  request.mutable_spec()->mutable_image()->set_mime_type("image/jpeg");
  ExpectInvalid(request, {"spec.image.mime_type", "image/png"});
}

TEST_F(ValidationTest, UriMustBeHttpsOrADataUri) {
  v1::SubmitTaskRequest request = PngRequest("a.png");
  for (const char* uri : {"file:///etc/passwd", "http://example.com/a.png", "/tmp/a.png",
                          "https://", "ftp://x/y.png"}) {
    request.mutable_spec()->mutable_image()->set_uri(uri);
    ExpectInvalid(request, {"spec.image.uri", "https://"});
  }
  request.mutable_spec()->mutable_image()->set_uri("data:image/png;base64,@@@");
  ExpectInvalid(request, {"spec.image.uri", "base64"});
  request.mutable_spec()->mutable_image()->set_uri("data:image/gif;base64,R0lGOD");
  ExpectInvalid(request, {"spec.image.uri", "image/gif"});
  // A well-formed data URI is accepted and stored as bytes.
  request.mutable_spec()->mutable_image()->set_uri(
      absl::StrCat("data:image/png;base64,", absl::Base64Escape(TinyPng(9))));
  grpc::ClientContext ctx;
  v1::Task task;
  ASSERT_TRUE(stub_->SubmitTask(&ctx, request, &task).ok());
  EXPECT_EQ(task.spec().image().mime_type(), "image/png");
  EXPECT_TRUE(task.spec().image().uri().empty());
}

TEST_F(ValidationTest, ServerPathIsConfinedToTheImageRoot) {
  v1::SubmitTaskRequest request = PngRequest("");
  for (const char* path : {"../secret.png", "/etc/passwd", "sub/../../secret.png", "escape.png"}) {
    request.mutable_spec()->mutable_image()->set_server_path(path);
    ExpectInvalid(request, {"spec.image.server_path"});
  }
  request.mutable_spec()->mutable_image()->set_server_path("missing.png");
  ExpectInvalid(request, {"spec.image.server_path", "does not exist"});
  request.mutable_spec()->mutable_image()->set_server_path("sub/ok_01.png");
  grpc::ClientContext ctx;
  v1::Task task;
  grpc::Status status = stub_->SubmitTask(&ctx, request, &task);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(task.target_filename_stub(), "ok_video");
  EXPECT_EQ(task.spec().image().server_path(), "sub/ok_01.png");
  EXPECT_EQ(WaitTerminal(task.id()).state(), v1::SUCCEEDED);
}

TEST_F(ValidationTest, StubLabelsPriorityRequestIdModeration) {
  v1::SubmitTaskRequest request = PngRequest("a.png");
  request.mutable_spec()->set_target_filename_stub("../../etc/cron");
  ExpectInvalid(request, {"spec.target_filename_stub", "[A-Za-z0-9._-]"});

  request = PngRequest("a.png");
  (*request.mutable_spec()->mutable_labels())["Bad Key"] = "x";
  ExpectInvalid(request, {"spec.labels", "Bad Key", "[a-z0-9._-]"});
  request = PngRequest("a.png");
  (*request.mutable_spec()->mutable_labels())["team"] = std::string(300, 'v');
  ExpectInvalid(request, {"spec.labels[\"team\"]", "256"});
  request = PngRequest("a.png");
  for (int i = 0; i < 65; ++i) (*request.mutable_spec()->mutable_labels())[absl::StrCat("k", i)] = "v";
  ExpectInvalid(request, {"spec.labels", "at most 64"});

  request = PngRequest("a.png");
  request.mutable_spec()->set_priority(101);
  ExpectInvalid(request, {"spec.priority", "-100..100"});

  request = PngRequest("a.png");
  request.set_request_id("has space");
  ExpectInvalid(request, {"request_id", "[A-Za-z0-9._:-]"});

  request = PngRequest("a.png");
  request.mutable_spec()->set_public_figure_threshold("none");
  ExpectInvalid(request, {"spec.public_figure_threshold", "auto, low"});
}

TEST_F(ValidationTest, MockLabelsAreCheckedUpFront) {
  v1::SubmitTaskRequest request = PngRequest("a.png");
  (*request.mutable_spec()->mutable_labels())["mock.outcome"] = "explode";
  ExpectInvalid(request, {"spec.labels[\"mock.outcome\"]", "succeed, fail, throttle_then_succeed"});
  request = PngRequest("a.png");
  (*request.mutable_spec()->mutable_labels())["mock.latency_ms"] = "-5";
  ExpectInvalid(request, {"spec.labels[\"mock.latency_ms\"]", "0..3600000"});
}

TEST_F(ValidationTest, NothingWasStoredAndTheServerStillServes) {
  ExpectInvalid(v1::SubmitTaskRequest(), {"spec"});
  grpc::ClientContext ctx;
  v1::ListTasksResponse list;
  ASSERT_TRUE(stub_->ListTasks(&ctx, v1::ListTasksRequest(), &list).ok());
  EXPECT_EQ(list.tasks_size(), 0);
  grpc::ClientContext ctx2;
  v1::GetTaskRequest get;
  get.set_id("not-an-id");
  v1::Task task;
  grpc::Status status = stub_->GetTask(&ctx2, get, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("id"));
  grpc::ClientContext ctx3;
  get.set_id("01ARZ3NDEKTSV4RRFFQ69G5FAV");
  EXPECT_EQ(stub_->GetTask(&ctx3, get, &task).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace videotask::testing
