// Fault soak: the whole service with the RunwayML backend and the real curl
// transport against the loopback fake, which answers 30% of requests with a
// fault (429, 5xx, a dropped connection, a cut body, malformed JSON, slow
// answers, answers slower than the timeout). A few hundred tasks: every one
// ends, none is created twice at the provider, and memory stays flat.
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/http/curl_transport.h"
#include "backends/runway/runway_backend.h"
#include "tests/testing/fake_runway_server.h"
#include "tests/testing/server_fixture.h"

namespace videotask::testing {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

using ::testing::IsEmpty;

constexpr int kTasksPerHalf = 150;
constexpr double kFaultRate = 0.3;

int64_t RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      int64_t kb = 0;
      std::string digits;
      for (char c : line) {
        if (c >= '0' && c <= '9') digits.push_back(c);
      }
      if (absl::SimpleAtoi(digits, &kb)) return kb;
    }
  }
  return -1;
}

class FaultSoakTest : public ServerTest {
 protected:
  void Configure(AppConfig& config) override {
    if (fake_.port() == 0) {
      ASSERT_TRUE(fake_.Start().ok());
      for (FakeRoute route : {FakeRoute::kCreate, FakeRoute::kGetTask, FakeRoute::kOutput}) {
        fake_.SetHook(route, [this, route](const httplib::Request& req) {
          return MaybeFault(route, req);
        });
      }
    }
    backends::BackendConfig runway;
    runway.name = "runway";
    // Below the fake's 8 server threads, so its own queueing never adds
    // timeouts beyond the injected ones.
    runway.max_concurrency = 6;
    runway.min_submit_interval = absl::ZeroDuration();
    runway.poll_interval = absl::Milliseconds(20);
    runway.poll_jitter = absl::ZeroDuration();
    config.backends.insert(config.backends.begin(),
                           backends::RunwaySetup(runway, {fake_.base_url(), kFakeRunwaySecret}));
    config.default_backend = "runway";
    config.worker_threads = 16;
    config.retry.max_attempts = 8;
    config.retry.initial_backoff = absl::Milliseconds(10);
    config.retry.max_backoff = absl::Milliseconds(100);
  }
  std::unique_ptr<backends::HttpTransport> MakeHttp() override {
    backends::CurlOptions options;
    options.total_timeout = absl::Milliseconds(800);
    auto curl = backends::CurlTransport::Create(options);
    EXPECT_TRUE(curl.ok()) << curl.status();
    return curl.ok() ? *std::move(curl) : nullptr;
  }

  std::optional<FakeReply> MaybeFault(FakeRoute route, const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_;
    if (std::uniform_real_distribution<double>(0, 1)(rng_) >= kFaultRate) {
      if (route == FakeRoute::kCreate) {
        // Answered by the fake's default behaviour: a provider task is made.
        auto body = nlohmann::json::parse(req.body, nullptr, false);
        std::string prompt = body.is_object() && body.contains("promptText") &&
                                     body["promptText"].is_string()
                                 ? body["promptText"].get<std::string>()
                                 : "?";
        ++created_[prompt];
      }
      return std::nullopt;
    }
    ++faults_;
    int kind = static_cast<int>(rng_() % 8);
    switch (kind) {
      case 0:
        return FakeReply::Error(429, "Too many requests", "0");
      case 1:
        return FakeReply::Error(500, "internal error");
      case 2:
        return FakeReply::Error(rng_() % 2 ? 502 : 503, "bad gateway");
      case 3:
        return FakeReply::Close();
      case 4:
        return FakeReply::Truncated();
      case 5: {
        // Malformed: for the output URL a cut body (bytes there are video).
        if (route == FakeRoute::kOutput) return FakeReply::Truncated();
        return FakeReply::Raw(200, rng_() % 2 ? "{not json" : "{\"id\": 17, \"status\": []}");
      }
      case 6: {
        FakeReply slow = FakeReply::Error(503, "slow and busy");
        slow.delay = absl::Milliseconds(200);
        return slow;
      }
      default: {
        FakeReply too_slow = FakeReply::Error(503, "later than the client waits");
        too_slow.delay = absl::Milliseconds(1200);
        return too_slow;
      }
    }
  }

  std::vector<std::string> SubmitBatch(int first, int count) {
    std::vector<std::string> ids;
    for (int i = first; i < first + count; ++i) {
      v1::SubmitTaskRequest request = PngRequest(absl::StrCat("soak_", i, ".png"), i);
      request.mutable_spec()->set_prompt_text(absl::StrCat("soak task ", i));
      grpc::ClientContext ctx;
      v1::Task task;
      grpc::Status status = stub_->SubmitTask(&ctx, request, &task);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (status.ok()) ids.push_back(task.id());
    }
    return ids;
  }

  // Waits for all; counts final states.
  std::map<v1::State, int> WaitAll(const std::vector<std::string>& ids) {
    std::map<v1::State, int> states;
    for (const std::string& id : ids) {
      v1::Task task = WaitTerminal(id);
      ++states[task.state()];
      if (task.state() == v1::FAILED) ++failure_codes_[task.error().code()];
    }
    return states;
  }

  FakeRunwayServer fake_;
  std::mutex mu_;
  std::mt19937_64 rng_{20240611};
  int requests_ = 0;
  int faults_ = 0;
  std::map<std::string, int> created_;
  std::map<std::string, int> failure_codes_;
};

TEST_F(FaultSoakTest, AllTerminalNoneCreatedTwiceMemoryFlat) {
  absl::Time start = absl::Now();
  std::map<v1::State, int> first = WaitAll(SubmitBatch(0, kTasksPerHalf));
  int64_t rss_middle = RssKb();
  std::map<v1::State, int> second = WaitAll(SubmitBatch(kTasksPerHalf, kTasksPerHalf));
  int64_t rss_end = RssKb();

  int terminal = 0;
  for (const auto* half : {&first, &second}) {
    for (const auto& [state, count] : *half) {
      EXPECT_TRUE(state == v1::SUCCEEDED || state == v1::FAILED) << v1::State_Name(state);
      terminal += count;
    }
  }
  EXPECT_EQ(terminal, 2 * kTasksPerHalf) << "tasks stuck or lost";

  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [prompt, count] : created_) {
    EXPECT_LE(count, 1) << "\"" << prompt << "\" was created " << count << " times";
  }
  // Failures are only ambiguous creates (never re-sent) or faults that
  // outlasted every retry; never anything else.
  for (const auto& [code, count] : failure_codes_) {
    EXPECT_THAT(code, ::testing::AnyOf("SUBMISSION_AMBIGUOUS", "PROVIDER_UNAVAILABLE",
                                       "RATE_LIMITED", "DOWNLOAD_FAILED"))
        << count;
  }
  EXPECT_THAT(fake_.violations(), IsEmpty());
  int succeeded = first[v1::SUCCEEDED] + second[v1::SUCCEEDED];
  EXPECT_GT(succeeded, kTasksPerHalf) << "most tasks should survive 30% faults";
  // Memory flat: the second half may not grow the process by more than 24 MB.
  // Under AddressSanitizer the RSS says nothing (freed blocks sit in its
  // quarantine, shadow memory grows); LeakSanitizer checks leaks there instead.
  if (!kAddressSanitizer) {
    EXPECT_LT(rss_end - rss_middle, 24 * 1024)
        << "RSS " << rss_middle << " kB -> " << rss_end << " kB";
  }

  std::string codes;
  for (const auto& [code, count] : failure_codes_) absl::StrAppend(&codes, code, "=", count, " ");
  std::printf(
      "fault soak: %d tasks, %d succeeded, failed: %s; %d provider requests, %d faults "
      "(%.0f%%), %zu provider tasks; RSS %lld kB -> %lld kB; %.1f s\n",
      terminal, succeeded, codes.c_str(), requests_, faults_, 100.0 * faults_ / requests_,
      fake_.task_ids().size(), static_cast<long long>(rss_middle),
      static_cast<long long>(rss_end), absl::ToDoubleSeconds(absl::Now() - start));
}

}  // namespace
}  // namespace videotask::testing
