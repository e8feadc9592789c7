// The pure parts of webhooks: the Standard Webhooks signature (against the
// scheme's published example), what a try's answer leads to, which events
// a change of state makes, and the URL and address rules.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "backends/http/url_policy.h"
#include "common/net.h"
#include "server/webhooks/delivery.h"
#include "server/webhooks/signing.h"
#include "server/webhooks/webhook_policy.h"
#include "tests/testing/status_matchers.h"

namespace videotask::webhooks {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using ::videotask::testing::IsOk;
using ::videotask::testing::StatusIs;

TEST(WebhookSigner, MatchesTheStandardWebhooksExample) {
  // The example of the Standard Webhooks specification and its libraries.
  VT_ASSERT_OK_AND_ASSIGN(WebhookSigner signer,
                          WebhookSigner::FromSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"));
  EXPECT_EQ(signer.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSigner, BadSecretsAreRefusedWithoutQuotingThem) {
  for (const char* secret : {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_%%%notbase64%%%",
                             "whsec_c2hvcnQ="}) {
    absl::StatusOr<WebhookSigner> signer = WebhookSigner::FromSecret(secret);
    EXPECT_THAT(signer.status(), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_)) << secret;
    EXPECT_THAT(std::string(signer.status().message()), Not(HasSubstr(secret)));
  }
  EXPECT_THAT(WebhookSigner::FromFile("/nonexistent/secret").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--webhook_secret_file")));
}

store::OutboxMessage Message(absl::Time event, int attempts) {
  store::OutboxMessage m;
  m.id = "msg_1";
  m.event_time = event;
  m.attempts = attempts;
  return m;
}

TEST(NextAfterTry, TwoHundredsDeliverSomeAnswersStopTheRestRetry) {
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  DeliveryOptions options;
  options.owner = "me";
  store::DeliveryResult r = NextAfterTry(Message(t0, 0), 204, "", t0, 1.0, options);
  EXPECT_EQ(r.state, store::DeliveryState::kDelivered);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.delivered_time, t0);
  EXPECT_EQ(r.owner, "me");
  for (int status : {400, 401, 403, 404, 410, 413, 422}) {
    r = NextAfterTry(Message(t0, 2), status, "HTTP x", t0, 1.0, options);
    EXPECT_EQ(r.state, store::DeliveryState::kFailed) << status;
    EXPECT_EQ(r.attempts, 3);
    EXPECT_EQ(r.last_status_code, status);
  }
  for (int status : {0, 408, 429, 500, 502, 503, 504}) {
    r = NextAfterTry(Message(t0, 0), status, "e", t0, 1.0, options);
    EXPECT_EQ(r.state, store::DeliveryState::kPending) << status;
    EXPECT_EQ(r.next_attempt_time, t0 + options.retry_initial) << status;
  }
}

TEST(NextAfterTry, BackoffDoublesWithJitterUpToTheCapAndGivesUpAfterRetryFor) {
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  DeliveryOptions options;
  options.retry_initial = absl::Seconds(5);
  options.retry_max = absl::Hours(1);
  options.retry_for = absl::Hours(24);
  EXPECT_EQ(NextAfterTry(Message(t0, 3), 500, "", t0, 1.0, options).next_attempt_time,
            t0 + absl::Seconds(40));
  EXPECT_EQ(NextAfterTry(Message(t0, 3), 500, "", t0, 1.2, options).next_attempt_time,
            t0 + absl::Seconds(48));
  EXPECT_EQ(NextAfterTry(Message(t0, 30), 500, "", t0, 1.0, options).next_attempt_time,
            t0 + absl::Hours(1));
  // Retried for the whole day after the event, then failed.
  const absl::Time late = t0 + absl::Hours(23) + absl::Minutes(30);
  store::DeliveryResult r = NextAfterTry(Message(t0, 40), 503, "HTTP 503", late, 1.0, options);
  EXPECT_EQ(r.state, store::DeliveryState::kFailed);
  EXPECT_THAT(r.last_error, HasSubstr("gave up after 41 tries"));
  r = NextAfterTry(Message(t0, 40), 503, "HTTP 503", t0 + absl::Hours(22), 1.0, options);
  EXPECT_EQ(r.state, store::DeliveryState::kPending);
}

Task TaskIn(TaskState state) {
  Task t;
  t.id = "01TASK";
  t.state = state;
  t.update_time = absl::FromUnixSeconds(1'800'000'000);
  t.spec.notify_url = "https://hooks.example/in";
  return t;
}

TEST(WebhookPolicy, TerminalEventsByDefaultRunningOnRequestBothUrls) {
  absl::BitGen rng;
  WebhookPolicy policy("https://central.example/all",
                       [](const Task& t) { return absl::StrCat(R"({"id":")", t.id, R"("})"); },
                       rng);
  EXPECT_THAT(policy.OnStored(TaskIn(TaskState::kRunning), TaskState::kSubmitting), SizeIs(0));
  EXPECT_THAT(policy.OnStored(TaskIn(TaskState::kQueued), std::nullopt), SizeIs(0));
  EXPECT_THAT(policy.OnStored(TaskIn(TaskState::kFailed), TaskState::kFailed), SizeIs(0));
  Task running = TaskIn(TaskState::kRunning);
  running.spec.notify_events = {"task.running"};
  EXPECT_THAT(policy.OnStored(running, TaskState::kSubmitting), SizeIs(2));

  std::vector<store::OutboxMessage> out =
      policy.OnStored(TaskIn(TaskState::kSucceeded), TaskState::kDownloading);
  ASSERT_THAT(out, SizeIs(2));
  EXPECT_EQ(out[0].url, "https://hooks.example/in");
  EXPECT_EQ(out[1].url, "https://central.example/all");
  EXPECT_NE(out[0].id, out[1].id);
  EXPECT_THAT(out[0].id, ::testing::StartsWith("msg_"));
  EXPECT_EQ(out[0].event_type, "task.succeeded");
  EXPECT_EQ(out[0].payload, out[1].payload);
  nlohmann::json body = nlohmann::json::parse(out[0].payload);
  EXPECT_EQ(body["type"].get<std::string>(), "task.succeeded");
  EXPECT_EQ(body["timestamp"].get<std::string>(), "2027-01-15T08:00:00.000000Z");
  EXPECT_EQ(body["data"]["id"].get<std::string>(), "01TASK");

  Task cancelled = TaskIn(TaskState::kCancelled);
  cancelled.spec.notify_url.clear();
  out = policy.OnStored(cancelled, TaskState::kQueued);
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(out[0].url, "https://central.example/all");
  EXPECT_EQ(out[0].event_type, "task.cancelled");
}

TEST(WebhookPolicy, NotifyEventsAreChecked) {
  EXPECT_THAT(CheckNotifyEvents({"task.running"}), IsOk());
  EXPECT_THAT(CheckNotifyEvents({"task.running", "task.exploded"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("spec.notify_events"), HasSubstr("task.exploded"),
                                        HasSubstr("allowed: task.running"))));
}

TEST(OutboundUrls, HttpsToPublicHostsOtherwiseOnlyListedHosts) {
  VT_ASSERT_OK_AND_ASSIGN(backends::HostAllowList allow,
                          backends::HostAllowList::Parse(" hooks.internal , 127.0.0.1,[::1]"));
  EXPECT_THAT(backends::CheckOutboundUrl("https://hooks.example.com/x?sig=1", {}), IsOk());
  EXPECT_THAT(backends::CheckOutboundUrl("http://hooks.example.com/x", {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--webhook_allow_hosts")));
  EXPECT_THAT(backends::CheckOutboundUrl("http://hooks.internal:8080/x", allow), IsOk());
  EXPECT_THAT(backends::CheckOutboundUrl("http://127.0.0.1:9/x", allow), IsOk());
  EXPECT_THAT(backends::CheckOutboundUrl("http://[::1]:9/x", allow), IsOk());
  for (const char* url : {"https://10.1.2.3/", "https://127.0.0.1/", "https://169.254.169.254/",
                          "https://[fe80::1]/", "https://[::ffff:192.168.1.1]/",
                          "https://localhost/", "https://192.168.0.10/"}) {
    EXPECT_THAT(backends::CheckOutboundUrl(url, {}),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("private")))
        << url;
  }
  EXPECT_THAT(backends::CheckOutboundUrl("ftp://hooks.example.com/", allow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scheme")));
  EXPECT_THAT(backends::CheckOutboundUrl("not a url", allow),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_THAT(backends::HostAllowList::Parse("https://x.example").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("host")));
}

TEST(OutboundUrls, AddressClasses) {
  for (const char* address : {"8.8.8.8", "1.1.1.1", "2606:4700::1111", "[2001:4860::8888]"}) {
    EXPECT_EQ(IsPublicAddressText(address), true) << address;
  }
  for (const char* address :
       {"10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1", "127.0.0.1", "127.8.9.10",
        "169.254.169.254", "100.64.0.1", "0.0.0.0", "255.255.255.255", "224.0.0.1", "::1", "::",
        "fe80::1", "fc00::1", "fd12::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "64:ff9b::a00:1",
        "2002:a00:1::1"}) {
    EXPECT_EQ(IsPublicAddressText(address), false) << address;
  }
  EXPECT_EQ(IsPublicAddressText("hooks.example.com"), std::nullopt);
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &v4.sin_addr);
  VT_ASSERT_OK_AND_ASSIGN(backends::HostAllowList allow,
                          backends::HostAllowList::Parse("hooks.internal"));
  EXPECT_FALSE(backends::OutboundAddressAllowed("rebound.example",
                                                reinterpret_cast<sockaddr*>(&v4), allow));
  EXPECT_TRUE(backends::OutboundAddressAllowed("hooks.internal",
                                               reinterpret_cast<sockaddr*>(&v4), allow));
  inet_pton(AF_INET, "93.184.216.34", &v4.sin_addr);
  EXPECT_TRUE(backends::OutboundAddressAllowed("rebound.example",
                                               reinterpret_cast<sockaddr*>(&v4), allow));
}

}  // namespace
}  // namespace videotask::webhooks
