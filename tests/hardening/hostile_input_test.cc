// Hostile input against the real in-process server: path traversal through
// server_path (.., absolute, symlinks out of the root), stubs that try to
// leave the output folder, oversized, truncated and lying images, odd
// Unicode, huge label maps and floods. Each is a clear INVALID_ARGUMENT (or
// RESOURCE_EXHAUSTED) naming the field, the server keeps serving, and no
// accepted task is lost or changed.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/domain/filename_stub.h"
#include "tests/testing/server_fixture.h"

namespace videotask::testing {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMaxImage = 256 << 10;

class HostileInputTest : public ServerTest {
 protected:
  void Configure(AppConfig& config) override {
    root_ = tmp_.path() + "/images";
    outside_ = tmp_.path() + "/outside";
    ::mkdir(root_.c_str(), 0755);
    ::mkdir((root_ + "/sub").c_str(), 0755);
    ::mkdir(outside_.c_str(), 0755);
    std::ofstream(root_ + "/ok.png", std::ios::binary) << TinyPng(1);
    std::ofstream(outside_ + "/secret.png", std::ios::binary) << TinyPng(2);
    ::symlink((outside_ + "/secret.png").c_str(), (root_ + "/link.png").c_str());
    ::symlink(outside_.c_str(), (root_ + "/sub/out").c_str());
    ::symlink("/etc/passwd", (root_ + "/passwd.png").c_str());
    config.image_root = root_;
    config.max_image_bytes = kMaxImage;
    for (auto& b : config.backends) b.config.max_image_bytes = kMaxImage;
  }

  grpc::Status Submit(const v1::SubmitTaskRequest& request, v1::Task* task = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::Task reply;
    grpc::Status status = stub_->SubmitTask(&ctx, request, task ? task : &reply);
    if (status.ok()) ++accepted_;
    return status;
  }

  void ExpectRefused(const v1::SubmitTaskRequest& request, const std::string& field,
                     grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT) {
    grpc::Status status = Submit(request);
    EXPECT_EQ(status.error_code(), code) << field << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(field));
  }

  void ExpectServing() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListBackendsResponse reply;
    ASSERT_TRUE(stub_->ListBackends(&ctx, v1::ListBackendsRequest(), &reply).ok());
  }

  int StoredCount() {
    int count = 0;
    std::string token;
    do {
      grpc::ClientContext ctx;
      v1::ListTasksRequest request;
      request.set_page_size(1000);
      request.set_page_token(token);
      v1::ListTasksResponse reply;
      EXPECT_TRUE(stub_->ListTasks(&ctx, request, &reply).ok());
      count += reply.tasks_size();
      token = reply.next_page_token();
    } while (!token.empty());
    return count;
  }

  std::string root_, outside_;
  std::atomic<int> accepted_{0};
};

TEST_F(HostileInputTest, ServerPathCannotLeaveTheImageRoot) {
  v1::SubmitTaskRequest request = PngRequest("x.png");
  for (const std::string& path :
       {std::string("../outside/secret.png"), std::string("sub/../../outside/secret.png"),
        outside_ + "/secret.png", std::string("/etc/passwd"), std::string("link.png"),
        std::string("sub/out/secret.png"), std::string("passwd.png"), std::string(".."),
        std::string("sub"), std::string("ok.png\0/../../x", 16), std::string("./../images/../outside/secret.png")}) {
    request.mutable_spec()->mutable_image()->set_server_path(path);
    ExpectRefused(request, "spec.image.server_path");
  }
  request.mutable_spec()->mutable_image()->set_server_path("ok.png");
  v1::Task task;
  ASSERT_TRUE(Submit(request, &task).ok());
  EXPECT_EQ(WaitTerminal(task.id()).state(), v1::SUCCEEDED);
  ExpectServing();
}

TEST_F(HostileInputTest, StubsCannotLeaveTheOutputFolder) {
  v1::SubmitTaskRequest request = PngRequest("x.png");
  for (const char* stub : {"../../etc/cron.d/job", "/tmp/x", "a/b", "..", ".hidden", "-rf",
                           "a\\..\\b", "name\nnext"}) {
    request.mutable_spec()->set_target_filename_stub(stub);
    ExpectRefused(request, "target_filename_stub");
  }
  // Names derived from hostile file names stay one safe component under
  // the output folder.
  std::vector<std::string> ids;
  for (const std::string& filename :
       {std::string("../../../../etc/passwd"), std::string("/abs/path/.png"),
        std::string("..\\..\\win.png"), std::string("\xE2\x80\xAEgnp.exe"),
        std::string(300, 'a') + ".png"}) {
    v1::SubmitTaskRequest named = PngRequest(filename, static_cast<int>(ids.size()) + 10);
    v1::Task task;
    grpc::Status status = Submit(named, &task);
    if (!status.ok()) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << filename;
      EXPECT_THAT(status.error_message(), HasSubstr("spec.image.filename"));
      continue;
    }
    EXPECT_TRUE(IsValidStub(task.target_filename_stub())) << task.target_filename_stub();
    ids.push_back(task.id());
  }
  for (const std::string& id : ids) {
    v1::Task done = WaitTerminal(id);
    ASSERT_EQ(done.state(), v1::SUCCEEDED);
    std::string dir = done.output_path().substr(0, done.output_path().rfind('/'));
    char real[PATH_MAX];
    ASSERT_NE(::realpath(dir.c_str(), real), nullptr);
    char want[PATH_MAX];
    ASSERT_NE(::realpath((tmp_.path() + "/outputs").c_str(), want), nullptr);
    EXPECT_EQ(std::string(real), std::string(want)) << done.output_path();
  }
  ExpectServing();
}

TEST_F(HostileInputTest, OversizedTruncatedAndLyingImages) {
  v1::SubmitTaskRequest request = PngRequest("x.png");
  std::string png = TinyPng(3);
  // Oversized: a valid PNG header padded past the limit.
  request.mutable_spec()->mutable_image()->set_content(png + std::string(kMaxImage, '\0'));
  ExpectRefused(request, "spec.image.content");
  // Truncated at every length.
  for (size_t n = 0; n < png.size(); n += 7) {
    request.mutable_spec()->mutable_image()->set_content(png.substr(0, n));
    ExpectRefused(request, "spec.image");
  }
  // Not an image at all, whatever it claims.
  request.mutable_spec()->mutable_image()->set_content("<?php system($_GET['c']); ?>");
  request.mutable_spec()->mutable_image()->set_mime_type("image/png");
  ExpectRefused(request, "spec.image");
  // A JPEG that says it is a PNG, and an HTML page behind an image name.
  std::string jpeg("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9", 22);
  request.mutable_spec()->mutable_image()->set_content(jpeg);
  request.mutable_spec()->mutable_image()->set_mime_type("image/png");
  ExpectRefused(request, "spec.image.mime_type");
  request.mutable_spec()->mutable_image()->set_content(png);
  request.mutable_spec()->mutable_image()->set_mime_type("text/html");
  ExpectRefused(request, "spec.image.mime_type");
  // A data: URI that lies about its type.
  request.mutable_spec()->mutable_image()->clear_mime_type();
  request.mutable_spec()->mutable_image()->set_uri("data:image/png;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2Q==");
  ExpectRefused(request, "spec.image.uri");
  ExpectServing();
}

TEST_F(HostileInputTest, OddUnicodeIsRefusedOrKeptExactly) {
  v1::SubmitTaskRequest request = PngRequest("x.png");
  // Invalid UTF-8 cannot even be parsed as the request: refused, server up.
  request.mutable_spec()->set_prompt_text("bad \xC3\x28 \xED\xA0\x80 surrogate");
  grpc::Status status = Submit(request);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  // Valid but odd: kept byte for byte.
  std::string odd = "\xE2\x80\xAE" "evil\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB"
                    "e\xCC\x81\xCC\x81\xCC\x81 \xEF\xBB\xBF\xF4\x8F\xBF\xBF";
  request.mutable_spec()->set_prompt_text(odd);
  (*request.mutable_spec()->mutable_labels())["team"] = odd;
  v1::Task task;
  status = Submit(request, &task);
  if (status.ok()) {
    EXPECT_EQ(task.spec().prompt_text(), odd);
    EXPECT_EQ(WaitTerminal(task.id()).spec().prompt_text(), odd);
  } else {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("spec."));
  }
  // A NUL inside a prompt or a label key.
  request.mutable_spec()->set_prompt_text(std::string("a\0b", 3));
  request.mutable_spec()->clear_labels();
  status = Submit(request, &task);
  if (!status.ok()) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  request.mutable_spec()->set_prompt_text("fine");
  (*request.mutable_spec()->mutable_labels())[std::string("k\0x", 3)] = "v";
  ExpectRefused(request, "spec.labels");
  // A prompt far past the limit.
  request.mutable_spec()->clear_labels();
  request.mutable_spec()->set_prompt_text(std::string(1 << 20, 'a'));
  ExpectRefused(request, "spec.prompt_text");
  ExpectServing();
}

TEST_F(HostileInputTest, HugeLabelMapsAndBatches) {
  v1::SubmitTaskRequest request = PngRequest("x.png");
  for (int i = 0; i < 20000; ++i) {
    (*request.mutable_spec()->mutable_labels())[absl::StrCat("k", i)] = std::string(200, 'v');
  }
  ExpectRefused(request, "spec.labels");
  request.mutable_spec()->clear_labels();
  (*request.mutable_spec()->mutable_labels())[std::string(5000, 'k')] = "v";
  ExpectRefused(request, "spec.labels");
  (*request.mutable_spec()->mutable_labels()).clear();
  (*request.mutable_spec()->mutable_labels())["k"] = std::string(1 << 20, 'v');
  ExpectRefused(request, "spec.labels");
  // A batch beyond the limit is refused whole.
  v1::BatchSubmitTasksRequest batch;
  v1::SubmitTaskRequest small = PngRequest("y.png");
  for (int i = 0; i < 1001; ++i) *batch.add_requests() = small;
  grpc::ClientContext ctx;
  v1::BatchSubmitTasksResponse reply;
  grpc::Status status = stub_->BatchSubmitTasks(&ctx, batch, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("requests"));
  // ListTasks with a huge label filter and a forged page token.
  grpc::ClientContext list_ctx;
  v1::ListTasksRequest list;
  for (int i = 0; i < 5000; ++i) (*list.mutable_labels())[absl::StrCat("k", i)] = "v";
  list.set_page_token(std::string(100000, 'A'));
  v1::ListTasksResponse list_reply;
  status = stub_->ListTasks(&list_ctx, list, &list_reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  ExpectServing();
  EXPECT_EQ(StoredCount(), accepted_.load());
}

TEST_F(HostileInputTest, HugeOrControlCharacterValuesGetShortOneLineErrors) {
  const std::string huge = std::string(1 << 20, 'x') + "\n";
  const std::string forged_line = "gen4\n[error] forged log line \x1b[31m";
  struct Case {
    const char* field;
    std::function<void(v1::TaskSpec&, const std::string&)> set;
  };
  std::vector<Case> cases = {
      {"spec.backend", [](v1::TaskSpec& s, const std::string& v) { s.set_backend(v); }},
      {"spec.model", [](v1::TaskSpec& s, const std::string& v) { s.set_model(v); }},
      {"spec.ratio", [](v1::TaskSpec& s, const std::string& v) { s.set_ratio(v); }},
      {"spec.target_filename_stub",
       [](v1::TaskSpec& s, const std::string& v) { s.set_target_filename_stub(v); }},
      {"spec.public_figure_threshold",
       [](v1::TaskSpec& s, const std::string& v) { s.set_public_figure_threshold(v); }},
      {"spec.image.mime_type",
       [](v1::TaskSpec& s, const std::string& v) { s.mutable_image()->set_mime_type(v); }},
      {"spec.labels", [](v1::TaskSpec& s, const std::string& v) { (*s.mutable_labels())[v] = "1"; }},
  };
  for (const Case& c : cases) {
    for (const std::string* value : {&huge, &forged_line}) {
      v1::SubmitTaskRequest request = PngRequest("x.png");
      c.set(*request.mutable_spec(), *value);
      grpc::Status status = Submit(request);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
      EXPECT_THAT(status.error_message(), HasSubstr(c.field));
      EXPECT_LT(status.error_message().size(), 600u) << c.field;
      EXPECT_EQ(status.error_message().find('\n'), std::string::npos) << status.error_message();
      EXPECT_EQ(status.error_message().find('\x1b'), std::string::npos) << status.error_message();
    }
  }
  // The huge value's length is told, not its bytes.
  v1::SubmitTaskRequest request = PngRequest("x.png");
  request.mutable_spec()->set_backend(huge);
  EXPECT_THAT(Submit(request).error_message(), HasSubstr("(1048577 bytes)"));

  grpc::ClientContext get_ctx;
  v1::GetTaskRequest get;
  get.set_id(huge);
  v1::Task task;
  grpc::Status status = stub_->GetTask(&get_ctx, get, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(status.error_message().size(), 600u);

  // ListTasks label filters follow the rule of spec.labels keys.
  for (const std::string& key : {std::string("Upper"), std::string("has space"), huge}) {
    grpc::ClientContext list_ctx;
    v1::ListTasksRequest list;
    (*list.mutable_labels())[key] = "v";
    v1::ListTasksResponse reply;
    status = stub_->ListTasks(&list_ctx, list, &reply);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << key.substr(0, 20);
    EXPECT_THAT(status.error_message(), HasSubstr("[a-z0-9._-]"));
    EXPECT_LT(status.error_message().size(), 600u);
  }
  ExpectServing();
  EXPECT_EQ(StoredCount(), accepted_.load());
}

TEST_F(HostileInputTest, FloodsLeaveTheServerServingAndNothingLost) {
  std::vector<std::string> good_ids;
  for (int i = 0; i < 5; ++i) {
    v1::Task task;
    ASSERT_TRUE(Submit(PngRequest(absl::StrCat("keep_", i, ".png"), 100 + i), &task).ok());
    good_ids.push_back(task.id());
  }
  std::atomic<int> answered{0}, unexpected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      auto stub = v1::VideoTaskService::NewStub(channel_);
      for (int i = 0; i < 150; ++i) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        grpc::Status status;
        switch (i % 4) {
          case 0: {  // invalid submit
            v1::SubmitTaskRequest bad = PngRequest("z.png");
            bad.mutable_spec()->mutable_image()->set_server_path("../../etc/shadow");
            v1::Task reply;
            status = stub->SubmitTask(&ctx, bad, &reply);
            if (status.error_code() != grpc::StatusCode::INVALID_ARGUMENT) ++unexpected;
            break;
          }
          case 1: {  // unknown and malformed ids
            v1::GetTaskRequest get;
            get.set_id(i % 8 == 1 ? "../../../etc/passwd" : "01J0Z3YV6Q8W3C2M5N7P9R1T4X");
            v1::Task reply;
            status = stub->GetTask(&ctx, get, &reply);
            if (status.error_code() != grpc::StatusCode::NOT_FOUND &&
                status.error_code() != grpc::StatusCode::INVALID_ARGUMENT) {
              ++unexpected;
            }
            break;
          }
          case 2: {  // output of a task that has none
            v1::ReadTaskOutputRequest read;
            read.set_id("01J0Z3YV6Q8W3C2M5N7P9R1T4X");
            read.set_offset(-5);
            auto reader = stub->ReadTaskOutput(&ctx, read);
            v1::OutputChunk chunk;
            while (reader->Read(&chunk)) {
            }
            status = reader->Finish();
            if (status.ok()) ++unexpected;
            break;
          }
          default: {  // a valid read
            v1::ListTasksRequest list;
            list.set_page_size(10);
            v1::ListTasksResponse reply;
            status = stub->ListTasks(&ctx, list, &reply);
            if (!status.ok()) ++unexpected;
          }
        }
        ++answered;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(answered.load(), 16 * 150);
  EXPECT_EQ(unexpected.load(), 0);
  ExpectServing();
  for (const std::string& id : good_ids) EXPECT_EQ(WaitTerminal(id).state(), v1::SUCCEEDED);
  EXPECT_EQ(StoredCount(), accepted_.load());
}

}  // namespace
}  // namespace videotask::testing
