// The whole service with the replicate backend against the loopback fake of
// Replicate's predictions API, injecting faults: every task ends truthfully,
// each is created at the provider at most once, a cancel reaches the
// provider, and the videos land in the output folder byte for byte.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/http/curl_transport.h"
#include "backends/replicate/replicate_backend.h"
#include "tests/testing/fake_replicate_server.h"
#include "tests/testing/server_fixture.h"

namespace videotask::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

class ReplicateIntegrationTest : public ServerTest {
 protected:
  void Configure(AppConfig& config) override {
    if (fake_.port() == 0) {
      ASSERT_TRUE(fake_.Start().ok());
    }
    backends::BackendConfig replicate;
    replicate.name = "replicate";
    replicate.max_concurrency = 2;
    replicate.min_submit_interval = absl::Milliseconds(10);
    replicate.poll_interval = absl::Milliseconds(20);
    config.backends.insert(
        config.backends.begin(),
        backends::ReplicateSetup(replicate, {fake_.base_url(), kFakeReplicateToken}));
    config.default_backend = "replicate";
  }
  std::unique_ptr<backends::HttpTransport> MakeHttp() override {
    backends::CurlOptions options;
    options.total_timeout = absl::Seconds(2);
    auto curl = backends::CurlTransport::Create(options);
    EXPECT_TRUE(curl.ok()) << curl.status();
    return curl.ok() ? *std::move(curl) : nullptr;
  }

  // Submits a task whose prompt names it, so the fake can tell tasks apart.
  std::string Submit(const std::string& name, const std::string& model = "") {
    v1::SubmitTaskRequest request = PngRequest(absl::StrCat(name, ".png"), ++seed_);
    request.mutable_spec()->set_prompt_text(absl::StrCat("prompt of ", name));
    request.mutable_spec()->set_model(model);
    grpc::ClientContext ctx;
    v1::Task task;
    grpc::Status status = stub_->SubmitTask(&ctx, request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(task.spec().backend(), "replicate");
    return task.id();
  }

  std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
  }

  // No prompt was created at the provider twice.
  void ExpectEachCreatedAtMostOnce() {
    std::map<std::string, int> created;
    for (const std::string& prompt : fake_.created_prompts()) ++created[prompt];
    for (const auto& [prompt, n] : created) EXPECT_EQ(n, 1) << prompt << " was created " << n << " times";
  }

  FakeReplicateServer fake_;
  int seed_ = 0;
};

TEST_F(ReplicateIntegrationTest, RetryableFaultsEndInVideosCreatedOnce) {
  ReplicateReply throttled = ReplicateReply::Problem(
      429, "Too Many Requests", "Request was throttled. Your rate limit resets in ~1s.", "1");
  fake_.Enqueue(ReplicateRoute::kCreate, throttled);
  fake_.Enqueue(ReplicateRoute::kCreate, ReplicateReply::Problem(503, "Unavailable", "overloaded"));
  fake_.Enqueue(ReplicateRoute::kGetPrediction, ReplicateReply::Problem(502, "Bad gateway", "x"));
  fake_.Enqueue(ReplicateRoute::kGetPrediction, ReplicateReply::Raw(200, "{not json"));
  fake_.Enqueue(ReplicateRoute::kOutput, ReplicateReply::Problem(503, "busy", "busy"));
  const std::vector<std::string> models = {"", "kwaivgi/kling-v2.1", "minimax/hailuo-02",
                                           "google/veo-3-fast", ""};
  std::vector<std::string> ids;
  for (size_t i = 0; i < models.size(); ++i) ids.push_back(Submit(absl::StrCat("scene", i), models[i]));
  for (const std::string& id : ids) {
    v1::Task task = WaitTerminal(id);
    ASSERT_EQ(task.state(), v1::SUCCEEDED) << task.error().code() << ": " << task.error().message();
    EXPECT_EQ(task.provider_status(), "succeeded");
    EXPECT_EQ(ReadFile(task.output_path()), fake_.output());
  }
  EXPECT_EQ(fake_.create_count(), 7);  // the 429 and the 503 created nothing
  EXPECT_EQ(fake_.prediction_ids().size(), 5u);
  ExpectEachCreatedAtMostOnce();
  EXPECT_THAT(fake_.violations(), IsEmpty());
}

TEST_F(ReplicateIntegrationTest, LostCreateAnswersAreAmbiguousAndNeverResent) {
  fake_.Enqueue(ReplicateRoute::kCreate, ReplicateReply::Close());
  fake_.Enqueue(ReplicateRoute::kCreate, ReplicateReply::Truncated());
  fake_.Enqueue(ReplicateRoute::kCreate, ReplicateReply::Raw(201, "<html>proxy</html>"));
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(Submit(absl::StrCat("lost", i)));
  for (const std::string& id : ids) {
    v1::Task task = WaitTerminal(id);
    EXPECT_EQ(task.state(), v1::FAILED);
    EXPECT_EQ(task.error().code(), "SUBMISSION_AMBIGUOUS") << task.error().message();
    EXPECT_FALSE(task.error().retryable());
  }
  EXPECT_EQ(fake_.create_count(), 3);

  // A connection closed before the request was read: the client cannot
  // know, so that is ambiguous too, and the create is not sent again.
  fake_.DropNextConnections(1);
  v1::Task dropped = WaitTerminal(Submit("dropped"));
  EXPECT_EQ(dropped.state(), v1::FAILED);
  EXPECT_EQ(dropped.error().code(), "SUBMISSION_AMBIGUOUS");
  EXPECT_EQ(fake_.dropped_connections(), 1);
  EXPECT_EQ(fake_.create_count(), 3);
  ExpectEachCreatedAtMostOnce();
}

TEST_F(ReplicateIntegrationTest, CancelReachesTheProvider) {
  fake_.SetScript({{"starting"}, {"processing"}});
  std::string id = Submit("long");
  v1::Task running;
  for (absl::Time give_up = absl::Now() + absl::Seconds(20); absl::Now() < give_up;) {
    grpc::ClientContext ctx;
    v1::GetTaskRequest get;
    get.set_id(id);
    ASSERT_TRUE(stub_->GetTask(&ctx, get, &running).ok());
    if (running.state() == v1::RUNNING && running.provider_status() == "processing") break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(running.provider_status(), "processing");
  grpc::ClientContext ctx;
  v1::CancelTaskRequest cancel;
  cancel.set_id(id);
  v1::Task cancelled;
  ASSERT_TRUE(stub_->CancelTask(&ctx, cancel, &cancelled).ok());
  EXPECT_EQ(WaitTerminal(id).state(), v1::CANCELLED);
  for (absl::Time give_up = absl::Now() + absl::Seconds(20);
       fake_.cancelled_ids().empty() && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(fake_.cancelled_ids(), std::vector<std::string>{running.provider_task_id()});
  EXPECT_EQ(fake_.create_count(), 1);
}

TEST_F(ReplicateIntegrationTest, ProviderRefusalAndFailureAreTruthful) {
  fake_.Enqueue(ReplicateRoute::kCreate,
                ReplicateReply::Problem(402, "Insufficient credit",
                                        "You have insufficient credit to run this model."));
  v1::Task refused = WaitTerminal(Submit("poor"));
  EXPECT_EQ(refused.state(), v1::FAILED);
  EXPECT_THAT(refused.error().message(), HasSubstr("insufficient credit"));
  EXPECT_EQ(refused.error().provider_code(), "HTTP_402");
  EXPECT_EQ(refused.attempt_count(), 1);

  fake_.SetScript({{"processing"},
                   {"failed",
                    "The input or output was flagged as sensitive. Please try again with "
                    "different inputs. (E005)"}});
  v1::Task flagged = WaitTerminal(Submit("flagged"));
  EXPECT_EQ(flagged.state(), v1::FAILED);
  EXPECT_EQ(flagged.error().code(), "PROVIDER_FAILED");
  EXPECT_EQ(flagged.error().provider_code(), "E005");
  EXPECT_FALSE(flagged.error().retryable());
  EXPECT_THAT(flagged.error().message(), HasSubstr("flagged as sensitive"));
  EXPECT_EQ(flagged.provider_status(), "failed");
  EXPECT_EQ(fake_.create_count(), 2);
  EXPECT_THAT(fake_.violations(), IsEmpty());
}

}  // namespace
}  // namespace videotask::testing
