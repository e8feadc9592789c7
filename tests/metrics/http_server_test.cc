// The HTTP port's server on its own, on a real loopback socket: routes,
// tokens, and the probes' answers for draining and failing checks.
#include "server/http/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>

#include "server/http/probes.h"
#include "tests/metrics/scrape.h"
#include "tests/testing/status_matchers.h"

namespace videotask::http {
namespace {

using ::testing::HasSubstr;
using ::videotask::testing::HttpGet;

constexpr char kToken[] = "http-test-token-0123456789";

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(std::shared_ptr<const auth::TokenChecker> tokens = nullptr) {
    HttpServerOptions options;
    options.listen = "127.0.0.1:0";
    options.tokens = std::move(tokens);
    VT_ASSERT_OK_AND_ASSIGN(server_, HttpServer::Create(options));
    readiness_.AddCheck("store", [this]() -> absl::Status {
      return store_ok_ ? absl::OkStatus() : absl::UnavailableError("the last write failed");
    });
    AddProbeRoutes(*server_, readiness_);
    server_->Get("/page", HttpServer::Access::kProtected,
                 [](const httplib::Request&, httplib::Response& res) {
                   res.set_content("a page", "text/plain");
                 });
    VT_ASSERT_OK(server_->Start());
    ASSERT_GT(server_->port(), 0);
  }

  Readiness readiness_;
  std::atomic<bool> store_ok_{true};
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, ReadinessFollowsChecksAndDraining) {
  Start();
  EXPECT_EQ(HttpGet(server_->port(), "/readyz").status, 200);
  store_ok_ = false;
  testing::HttpAnswer failing = HttpGet(server_->port(), "/readyz");
  EXPECT_EQ(failing.status, 503);
  EXPECT_THAT(failing.body, HasSubstr("store: the last write failed"));
  EXPECT_EQ(HttpGet(server_->port(), "/healthz").status, 200);
  store_ok_ = true;
  EXPECT_EQ(HttpGet(server_->port(), "/readyz").status, 200);
  readiness_.SetDraining();
  testing::HttpAnswer draining = HttpGet(server_->port(), "/readyz");
  EXPECT_EQ(draining.status, 503);
  EXPECT_THAT(draining.body, HasSubstr("draining"));
  server_->Stop();
  EXPECT_EQ(HttpGet(server_->port(), "/healthz").status, 0);
}

TEST_F(HttpServerTest, ProtectedRoutesNeedATokenWhenTokensAreSet) {
  Start(std::make_shared<const auth::TokenChecker>(std::vector<std::string>{kToken}));
  EXPECT_EQ(HttpGet(server_->port(), "/page").status, 401);
  EXPECT_EQ(HttpGet(server_->port(), "/page", "not-the-token-0123456789").status, 401);
  testing::HttpAnswer ok = HttpGet(server_->port(), "/page", kToken);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "a page");
  EXPECT_EQ(HttpGet(server_->port(), "/readyz").status, 200);
  EXPECT_EQ(HttpGet(server_->port(), "/healthz").status, 200);
}

TEST_F(HttpServerTest, OpenWithoutTokens) {
  Start();
  EXPECT_EQ(HttpGet(server_->port(), "/page").status, 200);
  EXPECT_EQ(HttpGet(server_->port(), "/missing").status, 404);
}

TEST(HttpServerCreateTest, RefusesBadAddressesAndHalfAKeyPair) {
  for (const char* bad : {"", "nonsense", ":80", "127.0.0.1:", "127.0.0.1:99999", "[::1]:x"}) {
    HttpServerOptions options;
    options.listen = bad;
    EXPECT_THAT(HttpServer::Create(options).status(),
                testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--http_listen")))
        << bad;
  }
  HttpServerOptions half;
  half.listen = "127.0.0.1:0";
  half.tls.cert_file = "/nonexistent.crt";
  EXPECT_THAT(HttpServer::Create(half).status(),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--tls_key")));
}

TEST(HttpServerCreateTest, APortInUseIsUnavailable) {
  HttpServerOptions options;
  options.listen = "127.0.0.1:0";
  VT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<HttpServer> first, HttpServer::Create(options));
  VT_ASSERT_OK(first->Start());
  options.listen = "127.0.0.1:" + std::to_string(first->port());
  VT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<HttpServer> second, HttpServer::Create(options));
  EXPECT_THAT(second->Start(),
              testing::StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot listen")));
}

}  // namespace
}  // namespace videotask::http
