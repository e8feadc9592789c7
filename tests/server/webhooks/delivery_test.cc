// The delivery workers with real parts: a SQLite store with the outbox
// policy, the libcurl transport with the webhook URL rules, a loopback
// receiver that checks every signature, a fake clock and inline tries.
#include "server/webhooks/delivery.h"

#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "backends/http/curl_transport.h"
#include "backends/http/url_policy.h"
#include "common/clock.h"
#include "common/executor.h"
#include "common/net.h"
#include "server/store/sqlite/sqlite_task_store.h"
#include "server/webhooks/webhook_policy.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/webhook_receiver.h"

namespace videotask::webhooks {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::videotask::testing::ReceivedWebhook;
using ::videotask::testing::WebhookReceiver;

class DeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(receiver_.Start().ok());
    store::SqliteStoreOptions options;
    options.data_dir = tmp_.path();
    options.clock = &clock_;
    VT_ASSERT_OK_AND_ASSIGN(store_, store::SqliteTaskStore::Open(options));
    store_->SetOutboxPolicy(&policy_);
    VT_ASSERT_OK_AND_ASSIGN(allow_, backends::HostAllowList::Parse("127.0.0.1"));
    backends::CurlOptions curl;
    curl.url_check = [this](absl::string_view url) {
      return backends::CheckOutboundUrl(url, allow_);
    };
    curl.address_check = [this](absl::string_view host, const struct sockaddr* address) {
      return backends::OutboundAddressAllowed(host, address, allow_);
    };
    VT_ASSERT_OK_AND_ASSIGN(http_, backends::CurlTransport::Create(curl));
    VT_ASSERT_OK_AND_ASSIGN(WebhookSigner signer,
                            WebhookSigner::FromSecret(testing::TestWebhookSecret()));
    DeliveryOptions delivery;
    delivery.owner = "test";
    delivery.retry_initial = absl::Seconds(1);
    delivery.timeout = absl::Seconds(5);
    deliverer_ = std::make_unique<WebhookDeliverer>(*store_, *http_, std::move(signer), clock_,
                                                    rng_, inline_, delivery);
  }
  void TearDown() override {
    deliverer_.reset();
    store_.reset();
  }

  // A task that asked for webhooks at `url`, moved to `state`.
  std::string TaskTo(const std::string& url, TaskState state, int seed = 0) {
    store::NewTask nt = testing::MockNewTask(seed);
    nt.task.id = absl::StrCat("task", seed);
    nt.task.spec.notify_url = url;
    nt.task.spec_fingerprint = SpecFingerprint(nt.task.spec, nt.task.image_sha256);
    absl::StatusOr<store::InsertResult> inserted = store_->Insert({std::move(nt)})[0];
    EXPECT_TRUE(inserted.ok()) << inserted.status();
    Task task = inserted->task;
    task.state = state;
    task.update_time = clock_.Now();
    EXPECT_TRUE(store_->Update(task).ok());
    return task.id;
  }
  std::vector<store::OutboxMessage> Deliveries(const std::string& id) {
    absl::StatusOr<std::vector<store::OutboxMessage>> rows = store_->ListDeliveries(id);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *rows : std::vector<store::OutboxMessage>{};
  }
  int RunOnce() {
    absl::StatusOr<int> started = deliverer_->RunOnce();
    EXPECT_TRUE(started.ok()) << started.status();
    return started.value_or(-1);
  }

  testing::TempDir tmp_;
  FakeClock clock_{absl::FromUnixSeconds(1'800'000'000)};
  absl::BitGen rng_;
  InlineExecutor inline_;
  WebhookReceiver receiver_{testing::TestWebhookSecret()};
  WebhookPolicy policy_{"", [](const Task& t) { return absl::StrCat(R"({"id":")", t.id, R"("})"); },
                        rng_};
  backends::HostAllowList allow_;
  std::unique_ptr<store::TaskStore> store_;
  std::unique_ptr<backends::HttpTransport> http_;
  std::unique_ptr<WebhookDeliverer> deliverer_;
};

TEST_F(DeliveryTest, RetriesFiveHundredsWithTheSameIdUntilTwoHundred) {
  receiver_.SetScript([](const std::string&, int attempt) { return attempt <= 2 ? 500 : 200; });
  const std::string id = TaskTo(receiver_.url(), TaskState::kSucceeded);
  EXPECT_EQ(RunOnce(), 1);
  std::vector<store::OutboxMessage> rows = Deliveries(id);
  ASSERT_THAT(rows, SizeIs(1));
  EXPECT_EQ(rows[0].state, store::DeliveryState::kPending);
  EXPECT_EQ(rows[0].attempts, 1);
  EXPECT_EQ(rows[0].last_status_code, 500);
  EXPECT_GE(rows[0].next_attempt_time, clock_.Now() + absl::Milliseconds(800));
  EXPECT_LE(rows[0].next_attempt_time, clock_.Now() + absl::Milliseconds(1200));
  EXPECT_EQ(RunOnce(), 0);  // not due yet
  clock_.Advance(absl::Milliseconds(1200));
  EXPECT_EQ(RunOnce(), 1);
  clock_.Advance(absl::Milliseconds(2400));
  EXPECT_EQ(RunOnce(), 1);
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(RunOnce(), 0);  // delivered: never again

  rows = Deliveries(id);
  ASSERT_THAT(rows, SizeIs(1));
  EXPECT_EQ(rows[0].state, store::DeliveryState::kDelivered);
  EXPECT_EQ(rows[0].attempts, 3);
  EXPECT_EQ(rows[0].last_status_code, 200);
  std::vector<ReceivedWebhook> got = receiver_.received();
  ASSERT_THAT(got, SizeIs(3));
  for (const ReceivedWebhook& w : got) {
    EXPECT_TRUE(w.signature_ok) << w.signature;
    EXPECT_EQ(w.id, rows[0].id);
    EXPECT_EQ(w.type, "task.succeeded");
    EXPECT_EQ(w.task_id, id);
  }
  EXPECT_EQ(got[0].timestamp, absl::StrCat(1'800'000'000));
  EXPECT_NE(got[2].timestamp, got[0].timestamp);  // each try signs its own time
}

TEST_F(DeliveryTest, AFourHundredStopsRetriesButA429DoesNot) {
  receiver_.SetScript([](const std::string&, int) { return 404; });
  const std::string gone = TaskTo(receiver_.url("/gone"), TaskState::kFailed, 1);
  EXPECT_EQ(RunOnce(), 1);
  clock_.Advance(absl::Hours(2));
  EXPECT_EQ(RunOnce(), 0);
  std::vector<store::OutboxMessage> rows = Deliveries(gone);
  ASSERT_THAT(rows, SizeIs(1));
  EXPECT_EQ(rows[0].state, store::DeliveryState::kFailed);
  EXPECT_EQ(rows[0].attempts, 1);
  EXPECT_EQ(rows[0].last_status_code, 404);

  receiver_.SetScript([](const std::string&, int attempt) { return attempt == 1 ? 429 : 204; });
  const std::string busy = TaskTo(receiver_.url("/busy"), TaskState::kCancelled, 2);
  EXPECT_EQ(RunOnce(), 1);
  EXPECT_EQ(Deliveries(busy)[0].state, store::DeliveryState::kPending);
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(RunOnce(), 1);
  rows = Deliveries(busy);
  EXPECT_EQ(rows[0].state, store::DeliveryState::kDelivered);
  EXPECT_EQ(rows[0].attempts, 2);
  EXPECT_EQ(receiver_.received().size(), 3u);
}

TEST_F(DeliveryTest, ANoAnswerIsRetried) {
  // A port nothing listens on: connection refused, nothing sent.
  WebhookReceiver closed(testing::TestWebhookSecret());
  ASSERT_TRUE(closed.Start().ok());
  const std::string url = closed.url();
  closed.Stop();
  const std::string id = TaskTo(url, TaskState::kSucceeded);
  EXPECT_EQ(RunOnce(), 1);
  std::vector<store::OutboxMessage> rows = Deliveries(id);
  ASSERT_THAT(rows, SizeIs(1));
  EXPECT_EQ(rows[0].state, store::DeliveryState::kPending);
  EXPECT_EQ(rows[0].last_status_code, 0);
  EXPECT_FALSE(rows[0].last_error.empty());
}

TEST_F(DeliveryTest, ANameResolvingToLoopbackIsRefusedWhenConnecting) {
  // The URL passes the submit rule (https to a name); the address it
  // resolves to does not, and nothing reaches the receiver.
  const std::string name = testing::LoopbackName();
  if (name.empty()) GTEST_SKIP() << "this machine's name does not resolve to loopback";
  const std::string url = absl::StrCat("https://", name, ":", receiver_.port(), "/hook");
  ASSERT_TRUE(backends::CheckOutboundUrl(url, allow_).ok());
  const std::string id = TaskTo(url, TaskState::kSucceeded);
  EXPECT_EQ(RunOnce(), 1);
  std::vector<store::OutboxMessage> rows = Deliveries(id);
  ASSERT_THAT(rows, SizeIs(1));
  EXPECT_EQ(rows[0].state, store::DeliveryState::kPending);
  EXPECT_THAT(rows[0].last_error, HasSubstr("is not allowed"));
  EXPECT_THAT(rows[0].last_error, HasSubstr(name));
  EXPECT_THAT(receiver_.received(), SizeIs(0));
}

}  // namespace
}  // namespace videotask::webhooks
